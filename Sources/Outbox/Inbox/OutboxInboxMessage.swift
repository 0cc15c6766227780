public import Foundation

/// A broker partition a consumer reads: the unit of offsets.
public struct OutboxInboxPartition: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The topic.
    public var topic: String
    /// The broker's partition number.
    public var partition: Int32

    /// Creates a partition reference.
    public init(topic: String, partition: Int32) {
        self.topic = topic
        self.partition = partition
    }

    public static func < (lhs: Self, rhs: Self) -> Bool { (lhs.topic, lhs.partition) < (rhs.topic, rhs.partition) }

    public var description: String { "\(topic)/\(partition)" }
}

/// A message as a consumer received it from the broker, handed to the application's handler.
public struct OutboxInboxMessage: Sendable, Hashable {
    /// Where it was read.
    public var partition: OutboxInboxPartition
    /// Its offset in that partition.
    public var offset: Int64
    /// The ordering key (the outbox message's key), or `nil`.
    public var key: String?
    /// The payload, byte-exact.
    public var payload: [UInt8]
    /// The headers as the broker delivered them (`outbox-id`, `outbox-type`, `traceparent`, …).
    public var headers: [OutboxHeader]

    /// Creates a received message.
    public init(partition: OutboxInboxPartition, offset: Int64, key: String?, payload: [UInt8], headers: [OutboxHeader]) {
        self.partition = partition
        self.offset = offset
        self.key = key
        self.payload = payload
        self.headers = headers
    }

    /// The outbox message id, from the `outbox-id` header.
    public var outboxID: UUID? { header("outbox-id").flatMap(OutboxUUIDText.uuid) }

    /// The event type, from the `outbox-type` header.
    public var type: String? { header("outbox-type") }

    /// What the inbox records to skip a redelivery: the outbox id when the message has one (the
    /// same message published twice is the same message), else its position `topic/partition/offset`
    /// (a message that did not come through the outbox is the same only when read again).
    public var identity: String {
        // Foundation's UUID text (sscanf and snprintf on Linux) was about 7 % of the consumer's CPU.
        outboxID.map { OutboxUUIDText.string($0) } ?? "\(partition.topic)/\(partition.partition)/\(offset)"
    }

    /// The last header of that name.
    public func header(_ name: String) -> String? {
        let lowered = name.lowercased()
        return headers.last { $0.name == name || $0.name.lowercased() == lowered }?.value
    }
}
