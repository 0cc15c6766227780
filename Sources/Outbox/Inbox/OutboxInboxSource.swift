/// Where a consumer reads messages: a broker consumer in a group (Kafka first).
///
/// `poll` answers messages in offset order per partition, and tells of partitions taken away by a
/// rebalance; before the source lets them go (``releaseRevoked(_:)``), the consumer finishes or
/// drops their work and commits their offsets (I5).
public protocol OutboxInboxSource: Sendable {
    /// Waits up to `timeout` for messages or a revocation.
    func poll(timeout: Duration) async throws -> OutboxInboxPoll

    /// Commits, per partition, the offset of the next message to read: everything before it is
    /// handled, skipped as a duplicate or dead-lettered (I3).
    func commit(_ positions: [OutboxInboxPartition: Int64]) async throws

    /// The consumer is done with revoked partitions (their offsets are committed).
    func releaseRevoked(_ partitions: Set<OutboxInboxPartition>) async

    /// Leaves the group, after the consumer's final commit.
    func close() async

    /// The broker's name in traces (OpenTelemetry's `messaging.system`). Default: `outbox`.
    var messagingSystem: String { get }
}

extension OutboxInboxSource {
    public var messagingSystem: String { "outbox" }
}

/// What one poll brought.
public struct OutboxInboxPoll: Sendable {
    /// New messages, in offset order per partition.
    public var messages: [OutboxInboxMessage]
    /// Partitions this consumer no longer owns.
    public var revoked: Set<OutboxInboxPartition>

    /// Creates a poll result.
    public init(messages: [OutboxInboxMessage] = [], revoked: Set<OutboxInboxPartition> = []) {
        self.messages = messages
        self.revoked = revoked
    }
}
