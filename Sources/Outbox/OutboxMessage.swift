public import Foundation

/// One message an application writes to the outbox, inside its own database transaction.
///
/// The relay later publishes it to the broker: `key` orders it (messages with the same key are
/// published in commit order), `id` travels with it so consumers can drop duplicates.
public struct OutboxMessage: Sendable, Hashable {
    /// The idempotency id: a time-ordered UUID (version 7), carried to the broker.
    public var id: UUID
    /// The broker destination (a Kafka topic, a file name, …).
    public var topic: String
    /// The ordering key, usually the aggregate id. `nil` means "no ordering constraint".
    public var key: String?
    /// The event name, e.g. `OrderPlaced`.
    public var type: String?
    /// The message body, stored and published byte for byte.
    public var payload: [UInt8]
    /// Ordered header pairs; the current trace context is added at enqueue.
    public var headers: [OutboxHeader]
    /// When the application created the message.
    public var createdAt: Date

    /// Creates a message with a fresh time-ordered id.
    public init(
        id: UUID = OutboxMessageID.make(),
        topic: String,
        key: String? = nil,
        type: String? = nil,
        payload: [UInt8],
        headers: [OutboxHeader] = [],
        createdAt: Date = Date()
    ) {
        self.id = id
        self.topic = topic
        self.key = key
        self.type = type
        self.payload = payload
        self.headers = headers
        self.createdAt = createdAt
    }

    /// Creates a message whose payload is the UTF-8 encoding of `text`.
    public init(topic: String, key: String? = nil, type: String? = nil, text: String, headers: [OutboxHeader] = []) {
        self.init(topic: topic, key: key, type: type, payload: Array(text.utf8), headers: headers)
    }

    /// Checks what every store requires before it writes the message.
    ///
    /// - Throws: ``OutboxError`` with code `.invalidMessage`, naming the field to fix.
    public func validate(limits: OutboxMessageLimits = .init()) throws {
        func invalid(_ text: String) -> OutboxError {
            OutboxError(code: .invalidMessage, operation: "enqueue", message: text)
        }
        if topic.isEmpty { throw invalid("The message topic is empty; give every message a topic.") }
        if topic.utf8.count > limits.maximumTopicBytes {
            throw invalid("The message topic is longer than \(limits.maximumTopicBytes) bytes; use a shorter topic.")
        }
        if let key, key.utf8.count > limits.maximumKeyBytes {
            throw invalid("The message key is longer than \(limits.maximumKeyBytes) bytes; use a shorter key.")
        }
        if let type, type.utf8.count > limits.maximumTypeBytes {
            throw invalid("The message type is longer than \(limits.maximumTypeBytes) bytes; use a shorter type.")
        }
        if payload.count > limits.maximumPayloadBytes {
            throw invalid(
                "The message payload is \(payload.count) bytes, above the limit of \(limits.maximumPayloadBytes) (OutboxMessageLimits.maximumPayloadBytes, sized for Kafka's default message.max.bytes); store large data elsewhere and send a reference, or raise both limits."
            )
        }
        // NUL cannot be stored in a text column by every store (PostgreSQL rejects it, SQLite
        // truncates at it), so it is refused everywhere rather than lost somewhere.
        let texts = [("topic", topic), ("key", key ?? ""), ("type", type ?? "")]
            + headers.flatMap { [("header name", $0.name), ("header value", $0.value)] }
        for (field, text) in texts where text.utf8.contains(0) {
            throw invalid("The message \(field) contains a NUL character; remove it or move the data into the payload.")
        }
        for header in headers where header.name.isEmpty {
            throw invalid("A message header has an empty name; give every header a name.")
        }
        for header in headers where OutboxHeader.isReserved(header.name) {
            throw invalid(
                "The message header '\(header.name)' is reserved: publishers set it (the id consumers deduplicate on); use the message's id and type, or another header name.")
        }
        let headerBytes = headers.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count }
        if headerBytes > limits.maximumHeaderBytes {
            throw invalid("The message headers take \(headerBytes) bytes, above the limit of \(limits.maximumHeaderBytes).")
        }
    }
}

/// One header of an ``OutboxMessage``; headers keep their order and may repeat a name.
///
/// Names starting with `outbox-` (any case) and `Nats-Msg-Id` are reserved: publishers set them
/// from the message (`outbox-id` is what consumers deduplicate on), so a header of the
/// application must not be able to spoof them. Enqueue refuses them.
public struct OutboxHeader: Sendable, Hashable, Codable {
    /// Whether publishers own a header of this name (see the type's documentation).
    public static func isReserved(_ name: String) -> Bool {
        let lowered = name.lowercased()
        return lowered.hasPrefix("outbox-") || lowered == "nats-msg-id"
    }

    /// The header name.
    public var name: String
    /// The header value.
    public var value: String

    /// Creates a header.
    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

/// Size bounds a store enforces at enqueue, so a bad message fails in the application's
/// transaction instead of poisoning the relay later.
public struct OutboxMessageLimits: Sendable, Hashable {
    /// The default payload limit: what fits Kafka's default `message.max.bytes` of 1,000,000
    /// bytes beside the largest key (1 KiB), type, topic and headers (64 KiB) and the record
    /// framing.
    public static let defaultMaximumPayloadBytes = 930_000

    /// Largest topic, in UTF-8 bytes. Default 249 (Kafka's limit).
    public var maximumTopicBytes: Int
    /// Largest key, in UTF-8 bytes. Default 1,024.
    public var maximumKeyBytes: Int
    /// Largest type, in UTF-8 bytes. Default 255.
    public var maximumTypeBytes: Int
    /// Largest payload, in bytes. Default 930,000: with the largest key, type, topic and headers
    /// the other limits allow, and the headers publishers add, a message still fits Kafka's
    /// default `message.max.bytes` (1,000,000), so a message the default publisher would refuse
    /// fails in the application's transaction instead of being dead-lettered later. Raise it
    /// together with the producer's `message.max.bytes` (and the broker's and topic's limits).
    public var maximumPayloadBytes: Int
    /// Largest sum of header names and values, in UTF-8 bytes. Default 64 KiB.
    public var maximumHeaderBytes: Int

    /// Creates limits; every argument has a default.
    public init(
        maximumTopicBytes: Int = 249,
        maximumKeyBytes: Int = 1024,
        maximumTypeBytes: Int = 255,
        maximumPayloadBytes: Int = OutboxMessageLimits.defaultMaximumPayloadBytes,
        maximumHeaderBytes: Int = 64 * 1024
    ) {
        self.maximumTopicBytes = maximumTopicBytes
        self.maximumKeyBytes = maximumKeyBytes
        self.maximumTypeBytes = maximumTypeBytes
        self.maximumPayloadBytes = maximumPayloadBytes
        self.maximumHeaderBytes = maximumHeaderBytes
    }
}
