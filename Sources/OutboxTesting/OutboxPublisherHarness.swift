public import Foundation
public import Outbox

/// How the publisher conformance suite reaches one broker.
public protocol OutboxPublisherHarness: Sendable {
    /// The broker's name as the test log shows it, e.g. "Kafka".
    var name: String { get }

    /// A fresh broker (or topic) and a running publisher.
    func makeEnvironment() async throws -> any OutboxPublisherUnderTest
}

/// A fault the broker can be made to show.
public struct OutboxBrokerFault: Sendable, Hashable, CustomStringConvertible {
    enum Kind: Hashable {
        case partitionLeaderDown
        case retriableErrors(Int)
        case fatalProducerError
        case outage
        case recovery
    }

    let kind: Kind

    /// The broker leading (some) partitions goes down and another broker takes over their leadership.
    public static let partitionLeaderDown = OutboxBrokerFault(kind: .partitionLeaderDown)
    /// The next `count` produce requests fail with retriable errors.
    public static func retriableErrors(_ count: Int) -> OutboxBrokerFault { OutboxBrokerFault(kind: .retriableErrors(count)) }
    /// The producer hits an error it cannot continue from and must be rebuilt.
    public static let fatalProducerError = OutboxBrokerFault(kind: .fatalProducerError)
    /// Every broker goes down.
    public static let outage = OutboxBrokerFault(kind: .outage)
    /// Every broker that went down comes back (the end of an ``outage``).
    public static let recovery = OutboxBrokerFault(kind: .recovery)

    public var description: String { "\(kind)" }

    /// Which fault this is, for harness implementations.
    public var isPartitionLeaderDown: Bool { kind == .partitionLeaderDown }
    /// The number of retriable errors to inject, if that is the fault.
    public var retriableErrorCount: Int? { if case .retriableErrors(let count) = kind { count } else { nil } }
    /// Which fault this is, for harness implementations.
    public var isFatalProducerError: Bool { kind == .fatalProducerError }
    /// Which fault this is, for harness implementations.
    public var isOutage: Bool { kind == .outage }
    /// Which fault this is, for harness implementations.
    public var isRecovery: Bool { kind == .recovery }
}

/// What a consumer read back.
public struct OutboxConsumedMessage: Sendable, Hashable {
    /// The outbox id carried in the message.
    public var id: UUID
    /// The key.
    public var key: String?
    /// The payload.
    public var payload: [UInt8]

    /// Creates a consumed message.
    public init(id: UUID, key: String?, payload: [UInt8]) {
        self.id = id
        self.key = key
        self.payload = payload
    }
}

/// One broker in a publisher conformance run.
public protocol OutboxPublisherUnderTest: Sendable {
    /// The publisher, already running.
    var publisher: any OutboxPublisher { get }
    /// A topic that exists and is empty.
    var topic: String { get }
    /// How long the publisher waits for the broker's answer to one message before it gives up on
    /// that delivery (Kafka's `message.timeout.ms`). An outage longer than this, many times over,
    /// must still use up no attempts.
    var deliveryTimeout: Duration { get }
    /// A message the broker will never take: too large, or (AMQP) for an exchange no queue is
    /// bound to. It may name another topic than ``topic``.
    func makePoisonMessage(key: String?) -> OutboxMessage
    /// Makes the broker misbehave.
    func inject(_ fault: OutboxBrokerFault) async throws
    /// Everything on `topic`, per key in broker order (per partition offset order), duplicates included.
    /// Returns when `count` messages were read or `timeout` passed.
    func consume(count: Int, timeout: Duration) async throws -> [OutboxConsumedMessage]
    /// Stops the publisher gracefully (flush) and releases the broker.
    func close() async throws
}
