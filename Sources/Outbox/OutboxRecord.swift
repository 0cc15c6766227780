public import Foundation

/// A committed message as the store hands it to the relay: the message plus the bookkeeping
/// the store keeps for it.
public struct OutboxRecord: Sendable, Hashable {
    /// The message as the application wrote it.
    public var message: OutboxMessage
    /// The store-assigned position in commit order; unique within a store.
    public var sequence: Int64
    /// The virtual partition, fixed at enqueue.
    public var partition: Int
    /// How many publish attempts have failed so far.
    public var attempts: Int
    /// The error of the last failed attempt, if any.
    public var lastError: String?
    /// Why the stored row could not be read whole (damaged headers), if so. The relay dead-letters
    /// such a record at once instead of publishing it.
    public var damage: String?

    /// Creates a record; stores call this when they read a row.
    public init(message: OutboxMessage, sequence: Int64, partition: Int, attempts: Int = 0, lastError: String? = nil, damage: String? = nil) {
        self.message = message
        self.sequence = sequence
        self.partition = partition
        self.attempts = attempts
        self.lastError = lastError
        self.damage = damage
    }
}

/// A message the relay gave up on, as listed by ``OutboxStore/deadLetters(limit:afterSequence:)``.
public struct OutboxDeadLetter: Sendable, Hashable {
    /// The stored message.
    public var record: OutboxRecord
    /// When it was dead-lettered.
    public var failedAt: Date

    /// Creates a dead letter.
    public init(record: OutboxRecord, failedAt: Date) {
        self.record = record
        self.failedAt = failedAt
    }
}

/// What ``OutboxStore/status(now:)`` reports: the health of the outbox at a glance.
public struct OutboxStatus: Sendable, Hashable {
    /// Messages waiting to be published (including those waiting for a retry).
    public var pending: Int
    /// Pending messages that failed at least once and wait for their next attempt.
    public var retrying: Int
    /// Messages being published right now, as reported by live relays at their last heartbeat.
    public var inFlight: Int
    /// Dead-lettered messages.
    public var dead: Int
    /// Delivered messages still kept (only with a retention window).
    public var deliveredRetained: Int
    /// Age of the oldest pending message, or `nil` when nothing is pending.
    public var oldestPendingAge: Duration?
    /// The number of virtual partitions.
    public var partitionCount: Int
    /// Live relays and the partitions each one holds.
    public var relays: [OutboxRelayInfo]
    /// Every partition's lease, in partition order (empty from stores that do not report them).
    public var leases: [OutboxPartitionLease]

    /// Creates a status.
    public init(
        pending: Int, retrying: Int, inFlight: Int, dead: Int, deliveredRetained: Int,
        oldestPendingAge: Duration?, partitionCount: Int, relays: [OutboxRelayInfo], leases: [OutboxPartitionLease] = []
    ) {
        self.leases = leases
        self.pending = pending
        self.retrying = retrying
        self.inFlight = inFlight
        self.dead = dead
        self.deliveredRetained = deliveredRetained
        self.oldestPendingAge = oldestPendingAge
        self.partitionCount = partitionCount
        self.relays = relays
    }
}

/// One relay as seen in the store.
public struct OutboxRelayInfo: Sendable, Hashable {
    /// The relay's id (unique per relay run).
    public var relayID: String
    /// The partitions whose lease it holds.
    public var partitions: [Int]
    /// Messages it reported in flight at its last heartbeat.
    public var inFlight: Int
    /// When its registration expires unless it heartbeats again.
    public var expiresAt: Date
    /// Messages this run of the relay has recorded as delivered, as of its last heartbeat
    /// (cumulative; starts at 0 when the relay starts).
    public var published: Int

    /// Creates relay information.
    public init(relayID: String, partitions: [Int], inFlight: Int, expiresAt: Date, published: Int = 0) {
        self.published = published
        self.relayID = relayID
        self.partitions = partitions
        self.inFlight = inFlight
        self.expiresAt = expiresAt
    }
}

/// One partition's lease as stored: who holds it and until when.
public struct OutboxPartitionLease: Sendable, Hashable {
    /// The virtual partition.
    public var partition: Int
    /// The relay holding it, or `nil` when it is free.
    public var owner: String?
    /// When the lease lapses unless its owner renews it (in the past for a free or lapsed lease).
    public var expiresAt: Date

    /// Creates a lease.
    public init(partition: Int, owner: String?, expiresAt: Date) {
        self.partition = partition
        self.owner = owner
        self.expiresAt = expiresAt
    }
}
