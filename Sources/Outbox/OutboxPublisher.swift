/// The broker side of the outbox: publishes a batch and reports one outcome per message.
///
/// Contract, which the publisher conformance suite checks:
/// - `records` come in store sequence order. Messages sharing a key must reach the broker in that
///   order, and once one of them fails, the later ones with the same key in the same call must not
///   be delivered: report them ``OutboxPublishOutcome/skipped``. That is what keeps per-key order
///   while a message is retried.
/// - The answer has exactly one outcome per record, in the same order.
/// - Throw (instead of answering) when the broker cannot be reached at all: the relay then puts the
///   whole batch back without counting an attempt, and backs off. A broker outage must not walk
///   healthy messages towards the dead-letter state. When only some messages met the outage (a
///   delivery timed out, no leader, all brokers down), report those
///   ``OutboxPublishOutcome/unavailable(_:)``: the same, message by message.
/// - Honour task cancellation: a relay that is cancelled abandons its batch.
public protocol OutboxPublisher: Sendable {
    /// Publishes the records and reports one outcome for each, in order.
    func publish(_ records: [OutboxRecord]) async throws -> [OutboxPublishOutcome]

    /// The broker's name in traces (OpenTelemetry's `messaging.system`: `kafka`, `nats`,
    /// `rabbitmq`, …). Default: `outbox`.
    var messagingSystem: String { get }
}

extension OutboxPublisher {
    public var messagingSystem: String { "outbox" }
}

/// What happened to one published message.
public struct OutboxPublishOutcome: Sendable, Hashable, CustomStringConvertible {
    private enum Kind: Hashable {
        case delivered
        case failed(reason: String, isRetriable: Bool, isPossiblyPersisted: Bool)
        case skipped
        case unavailable(reason: String)
    }

    private let kind: Kind

    /// The broker acknowledged the message.
    public static let delivered = OutboxPublishOutcome(kind: .delivered)

    /// The message was not sent because an earlier message with the same key failed in this batch.
    /// The relay retries it later without counting an attempt.
    public static let skipped = OutboxPublishOutcome(kind: .skipped)

    /// The broker could not be reached for this message (its delivery timed out, its partition had
    /// no leader, every broker was down). Nothing is wrong with the message: the relay leaves it
    /// pending without counting an attempt and pauses publishing, as when `publish` throws.
    ///
    /// - Parameter reason: why, in words that contain no payload data.
    public static func unavailable(_ reason: String) -> OutboxPublishOutcome {
        OutboxPublishOutcome(kind: .unavailable(reason: reason))
    }

    /// The broker did not take the message.
    ///
    /// - Parameters:
    ///   - reason: why, in words that contain no payload data.
    ///   - isRetriable: whether a later attempt can succeed (a timeout) or not (a too-large message).
    ///   - isPossiblyPersisted: the broker's answer was lost; a retry may duplicate the message.
    public static func failed(_ reason: String, isRetriable: Bool, isPossiblyPersisted: Bool = false) -> OutboxPublishOutcome {
        OutboxPublishOutcome(kind: .failed(reason: reason, isRetriable: isRetriable, isPossiblyPersisted: isPossiblyPersisted))
    }

    /// Whether the broker acknowledged the message.
    public var isDelivered: Bool { kind == .delivered }
    /// Whether the message was held back behind a failed message of its key.
    public var isSkipped: Bool { kind == .skipped }
    /// Whether the broker could not be reached for this message (no attempt is counted).
    public var isUnavailable: Bool {
        if case .unavailable = kind { return true }
        return false
    }
    /// The failure reason, or `nil` when the message was delivered or skipped.
    public var failureReason: String? {
        if case .failed(let reason, _, _) = kind { return reason }
        return nil
    }
    /// Whether a failure can succeed on a later attempt; `false` when not failed.
    public var isRetriable: Bool {
        if case .failed(_, let retriable, _) = kind { return retriable }
        return false
    }
    /// Whether a failure may still have reached the broker.
    public var isPossiblyPersisted: Bool {
        if case .failed(_, _, let persisted) = kind { return persisted }
        return false
    }

    public var description: String {
        switch kind {
        case .delivered: "delivered"
        case .skipped: "skipped"
        case .unavailable(let reason): "unavailable: \(reason)"
        case .failed(let reason, let retriable, _): "failed(\(retriable ? "retriable" : "permanent"): \(reason))"
        }
    }
}
