public import Foundation
public import ServiceLifecycle

/// The storage side of the outbox, as the relay and the CLI see it.
///
/// Every store has the same shape (see "One store contract" in docs/ARCHITECTURE.md):
/// - `enqueue(_:in:)`, for one message or an array, inside the application's own transaction
///   type (a GRDB `Database`, a postgres-nio `PostgresConnection`, a `MySQLConnection`, a
///   `MongoSession`), because atomicity with the business write is the whole point; async where
///   the driver is.
/// - A `Configuration` with the same names: the schema or database, a table (or collection)
///   prefix, the partition count, the message limits.
/// - Construction from the application's own client or pool where the driver has one.
/// - It is a `Service`: ``run()`` keeps the store's wake-up going (a notification listener,
///   a change stream, a change watcher) and returns at graceful shutdown. Add it to the
///   application's `ServiceGroup` after the client it uses and before the relay; without it,
///   relays in the process still work, by polling.
///
/// Every method is one short transaction (a constant number of round trips), whatever the backlog.
/// Times come from the caller so that relays on one store agree on "now" as far as their clocks do.
public protocol OutboxStore: Service, Sendable {
    /// Creates or upgrades the schema; safe to run again.
    func migrate() async throws

    /// Whether the store's push wake-up (PostgreSQL LISTEN, the MongoDB change stream) is
    /// connected; while it is not, relays find new messages by polling. Stores that need no
    /// connection for it answer `true`.
    var isWakeUpConnected: Bool { get }

    /// Registers the relay, renews its leases, releases what it gives up and takes free or expired
    /// partitions up to its fair share. See ``OutboxLeasePlanner`` for the rules.
    func heartbeat(_ request: OutboxHeartbeat) async throws -> OutboxLeaseGrant

    /// Removes the relay's registration and frees all its leases, so others take over at once.
    func resign(relayID: String) async throws

    /// Due, pending messages of the given partitions, in sequence order, at most `limit` and about
    /// `maximumBytes` of payload, leaving out the sequences in `excluding`.
    ///
    /// The byte bound stops the claim after the message that reaches `maximumBytes` (so the first
    /// message always comes, however large): a backlog of large messages is read a few at a time
    /// instead of a whole batch of them at once.
    ///
    /// A message is left out when an earlier pending message with the same key waits for a retry,
    /// so a failing message holds back only its own key. `excluding` lists the messages the relay
    /// already has in flight: leaving them out in the store (rather than reading them again and
    /// dropping them) keeps the relay's reads at one row per message even with batches overlapping.
    func claim(partitions: [Int], limit: Int, maximumBytes: Int, now: Date, excluding: [Int64]) async throws -> [OutboxRecord]

    /// Records the outcome of a published batch in one transaction. Outcomes for partitions the
    /// relay no longer owns are ignored (fencing) and counted in the result.
    func acknowledge(_ acknowledgement: OutboxAcknowledgement) async throws -> OutboxAcknowledgementResult

    /// Returns when new messages may have been committed, or after `timeout`.
    func waitForNewMessages(timeout: Duration) async

    /// Deletes up to `limit` delivered messages finished before `cutoff` (retention mode only).
    func removeDelivered(finishedBefore cutoff: Date, limit: Int) async throws -> Int

    /// Counts and ownership for `outbox status`: exact, and a pass over the whole table.
    func status(now: Date) async throws -> OutboxStatus

    /// The backlog for the relay's gauges, in bounded indexed reads: pending and dead messages
    /// counted up to `countLimit` (index entries read stop there) and the age of the first
    /// pending message in commit order (one index probe). Cheap at any table size, unlike ``status(now:)``.
    func backlog(now: Date, countLimit: Int) async throws -> OutboxBacklog

    /// Dead-lettered messages in sequence order, after `afterSequence`.
    func deadLetters(limit: Int, afterSequence: Int64?) async throws -> [OutboxDeadLetter]

    /// Makes dead letters pending again with zero attempts; returns how many were found.
    func retryDeadLetters(sequences: [Int64], now: Date) async throws -> Int

    /// Deletes dead letters; returns how many were found.
    func discardDeadLetters(sequences: [Int64]) async throws -> Int
}

extension OutboxStore {
    /// A store without a wake-up of its own: always "connected".
    public var isWakeUpConnected: Bool { true }

    /// A store without anything to run waits for graceful shutdown.
    public func run() async throws {
        try? await gracefulShutdown()
    }

    /// Due, pending messages of the given partitions, in sequence order, at most `limit`.
    public func claim(partitions: [Int], limit: Int, now: Date) async throws -> [OutboxRecord] {
        try await claim(partitions: partitions, limit: limit, maximumBytes: .max, now: now, excluding: [])
    }

    /// Due, pending messages of the given partitions, in sequence order, at most `limit`, leaving
    /// out the sequences in `excluding`.
    public func claim(partitions: [Int], limit: Int, now: Date, excluding: [Int64]) async throws -> [OutboxRecord] {
        try await claim(partitions: partitions, limit: limit, maximumBytes: .max, now: now, excluding: excluding)
    }
}

/// What a relay sends with each heartbeat.
public struct OutboxHeartbeat: Sendable, Hashable {
    /// The relay's id, unique per relay run.
    public var relayID: String
    /// How long leases and the registration last without another heartbeat.
    public var leaseDuration: Duration
    /// Partitions the relay gives up now (it has nothing in flight on them).
    public var releasing: Set<Int>
    /// Messages the relay has in flight, shown by `outbox status`.
    public var inFlight: Int
    /// Messages this relay object has recorded as delivered since it started (cumulative), shown
    /// by `outbox admin` as throughput per relay.
    public var published: Int
    /// The relay's clock.
    public var now: Date
    /// This run of the relay, unique per ``OutboxRelay`` object: tells a second relay started with
    /// the same id (or a restart before the crashed run's registration lapsed) from the first.
    public var instanceID: String

    /// Creates a heartbeat.
    public init(relayID: String, leaseDuration: Duration, releasing: Set<Int> = [], inFlight: Int = 0, now: Date = Date(),
                instanceID: String = "", published: Int = 0) {
        self.published = published
        self.relayID = relayID
        self.leaseDuration = leaseDuration
        self.releasing = releasing
        self.inFlight = inFlight
        self.now = now
        self.instanceID = instanceID
    }
}

/// What the store answers to a heartbeat.
public struct OutboxLeaseGrant: Sendable, Hashable {
    /// Partitions the relay owns until the next heartbeat is due.
    public var owned: Set<Int>
    /// Owned partitions above the relay's fair share: stop claiming them and release them once drained.
    public var surplus: Set<Int>
    /// The store's number of virtual partitions.
    public var partitionCount: Int
    /// Live relays, including this one.
    public var liveRelays: Int
    /// Another live relay holds this relay's id: nothing is granted until its registration lapses.
    public var relayIDInUse: Bool = false

    /// Creates a grant.
    public init(owned: Set<Int>, surplus: Set<Int>, partitionCount: Int, liveRelays: Int) {
        self.owned = owned
        self.surplus = surplus
        self.partitionCount = partitionCount
        self.liveRelays = liveRelays
    }
}

/// The outcome of one published batch, written in one store transaction.
public struct OutboxAcknowledgement: Sendable, Hashable {
    /// A message to reschedule.
    public struct Retry: Sendable, Hashable {
        /// The message.
        public var sequence: Int64
        /// Its partition (for fencing).
        public var partition: Int
        /// When to try again.
        public var availableAt: Date
        /// Why it failed, without payload data.
        public var error: String

        /// Creates a retry.
        public init(sequence: Int64, partition: Int, availableAt: Date, error: String) {
            self.sequence = sequence
            self.partition = partition
            self.availableAt = availableAt
            self.error = error
        }
    }

    /// A message to dead-letter.
    public struct DeadLetter: Sendable, Hashable {
        /// The message.
        public var sequence: Int64
        /// Its partition (for fencing).
        public var partition: Int
        /// Why it failed for good, without payload data.
        public var error: String

        /// Creates a dead letter.
        public init(sequence: Int64, partition: Int, error: String) {
            self.sequence = sequence
            self.partition = partition
            self.error = error
        }
    }

    /// The relay that owns the partitions.
    public var relayID: String
    /// Delivered messages, as (sequence, partition).
    public var delivered: [OutboxMessageReference]
    /// Messages to try again later.
    public var retries: [Retry]
    /// Messages to dead-letter.
    public var deadLetters: [DeadLetter]
    /// Keep delivered rows (marked delivered) instead of deleting them.
    public var retainDelivered: Bool
    /// The relay's clock.
    public var now: Date

    /// Creates an acknowledgement.
    public init(
        relayID: String, delivered: [OutboxMessageReference] = [], retries: [Retry] = [],
        deadLetters: [DeadLetter] = [], retainDelivered: Bool = false, now: Date = Date()
    ) {
        self.relayID = relayID
        self.delivered = delivered
        self.retries = retries
        self.deadLetters = deadLetters
        self.retainDelivered = retainDelivered
        self.now = now
    }

    /// Whether there is nothing to write.
    public var isEmpty: Bool { delivered.isEmpty && retries.isEmpty && deadLetters.isEmpty }
}

/// Identifies a stored message for an acknowledgement.
public struct OutboxMessageReference: Sendable, Hashable {
    /// The store-assigned sequence.
    public var sequence: Int64
    /// The virtual partition, used to check the lease.
    public var partition: Int

    /// Creates a reference.
    public init(sequence: Int64, partition: Int) {
        self.sequence = sequence
        self.partition = partition
    }
}

/// How much of an acknowledgement the store applied.
public struct OutboxAcknowledgementResult: Sendable, Hashable {
    /// Outcomes written.
    public var applied: Int
    /// Outcomes ignored because the relay no longer owned the partition.
    public var fenced: Int

    /// Creates a result.
    public init(applied: Int, fenced: Int) {
        self.applied = applied
        self.fenced = fenced
    }
}
