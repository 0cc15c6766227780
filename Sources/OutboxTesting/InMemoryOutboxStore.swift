public import Foundation
public import Outbox
import Synchronization

/// An ``OutboxStore`` in memory, for unit tests and examples. It follows the same rules as the
/// database stores (leases, fencing, per-key blocking, retention) and passes the same conformance
/// suite, but keeps nothing across restarts.
public final class InMemoryOutboxStore: OutboxStore, Sendable {
    struct Row {
        var record: OutboxRecord
        var availableAt: Date
        var state: State
        var finishedAt: Date?
    }

    enum State { case pending, dead, delivered }

    struct Storage {
        var rows: [Int64: Row] = [:]
        /// The ids of `rows`: unique, as a database's unique index on them keeps them.
        var sequenceOfID: [UUID: Int64] = [:]
        var nextSequence: Int64 = 1
        var leases: [OutboxLeasePlanner.Lease]
        var registrations: [String: OutboxLeasePlanner.Registration] = [:]
        var inFlight: [String: Int] = [:]
        var published: [String: Int] = [:]
        var rowsClaimed = 0

        mutating func insert(_ row: Row) {
            rows[row.record.sequence] = row
            sequenceOfID[row.record.message.id] = row.record.sequence
        }

        mutating func remove(_ sequence: Int64) {
            guard let row = rows.removeValue(forKey: sequence) else { return }
            sequenceOfID[row.record.message.id] = nil
        }
    }

    private let storage: Mutex<Storage>
    private let newMessages = OutboxSignal()
    private let wakeUpCursor = OutboxSignalCursor()
    /// The number of virtual partitions.
    public let partitionCount: Int
    /// Size bounds checked at enqueue.
    public let messageLimits: OutboxMessageLimits

    /// Rows the claims have returned so far: against the messages delivered, how often a message
    /// was claimed (1.0 when none is claimed twice).
    public var rowsClaimed: Int { storage.withLock { $0.rowsClaimed } }

    /// Creates an empty store with `partitionCount` virtual partitions.
    public init(partitionCount: Int = 16, messageLimits: OutboxMessageLimits = .init()) {
        self.partitionCount = partitionCount
        self.messageLimits = messageLimits
        storage = Mutex(Storage(leases: (0..<partitionCount).map {
            OutboxLeasePlanner.Lease(partition: $0, owner: nil, expiresAt: .distantPast)
        }))
    }

    /// A transaction of the in-memory store: messages enqueued in it become visible only if the
    /// closure returns without throwing.
    public struct Transaction: ~Copyable {
        fileprivate var rows: [Row] = []
        fileprivate var ids: Set<UUID> = []
        fileprivate let store: InMemoryOutboxStore

        /// Adds a message to the transaction; the sequence is assigned now, as a database would.
        public mutating func enqueue(_ message: OutboxMessage) throws {
            try message.validate(limits: store.messageLimits)
            let message = message.capturingTraceContext()
            // The sequence is drawn only for an id no committed row holds, as a unique index would.
            let sequence = store.storage.withLock { storage -> Int64? in
                guard storage.sequenceOfID[message.id] == nil else { return nil }
                defer { storage.nextSequence += 1 }
                return storage.nextSequence
            }
            guard let sequence, ids.insert(message.id).inserted else {
                throw OutboxStoreErrorText(store: "in-memory", operation: "enqueue", underlying: nil).idAlreadyInOutbox
            }
            let partition = OutboxPartitioning.partition(key: message.key, id: message.id, partitionCount: store.partitionCount)
            rows.append(Row(record: OutboxRecord(message: message, sequence: sequence, partition: partition),
                            availableAt: .distantPast, state: .pending))
        }
    }

    /// Runs `body` as one transaction; enqueued messages are committed when it returns, discarded when it throws.
    public func withTransaction<T>(_ body: (inout Transaction) throws -> T) throws -> T {
        var transaction = Transaction(store: self)
        let result = try body(&transaction)
        let rows = transaction.rows
        storage.withLock { storage in
            for row in rows { storage.insert(row) }
        }
        if !rows.isEmpty { newMessages.signal() }
        return result
    }

    public func migrate() async throws {}

    public func heartbeat(_ request: OutboxHeartbeat) async throws -> OutboxLeaseGrant {
        storage.withLock { storage in
            let plan = OutboxLeasePlanner.plan(request, leases: storage.leases, registrations: Array(storage.registrations.values))
            for lease in plan.changedLeases { storage.leases[lease.partition] = lease }
            guard !plan.grant.relayIDInUse else { return plan.grant }
            storage.registrations[request.relayID] = plan.registration
            storage.inFlight[request.relayID] = request.inFlight
            storage.published[request.relayID] = request.published
            for relay in plan.lapsedRelays {
                storage.registrations[relay] = nil
                storage.inFlight[relay] = nil
            }
            return plan.grant
        }
    }

    public func resign(relayID: String) async throws {
        storage.withLock { storage in
            for index in storage.leases.indices where storage.leases[index].owner == relayID {
                storage.leases[index] = .init(partition: index, owner: nil, expiresAt: .distantPast)
            }
            storage.registrations[relayID] = nil
            storage.inFlight[relayID] = nil
        }
    }

    public func claim(partitions: [Int], limit: Int, maximumBytes: Int, now: Date, excluding: [Int64]) async throws -> [OutboxRecord] {
        let wanted = Set(partitions)
        let skipped = Set(excluding)
        return storage.withLock { storage in
            var blockedKeys: Set<String> = []
            var result: [OutboxRecord] = []
            var bytes = 0
            for sequence in storage.rows.keys.sorted() {
                guard let row = storage.rows[sequence], row.state == .pending, wanted.contains(row.record.partition) else { continue }
                let key = row.record.message.key
                if row.availableAt > now {
                    if let key { blockedKeys.insert(key) }
                    continue
                }
                if let key, blockedKeys.contains(key) { continue }
                if skipped.contains(sequence) { continue }
                result.append(row.record)
                bytes += row.record.message.payload.count
                if result.count == limit || bytes >= maximumBytes { break }
            }
            storage.rowsClaimed += result.count
            return result
        }
    }

    public func acknowledge(_ acknowledgement: OutboxAcknowledgement) async throws -> OutboxAcknowledgementResult {
        storage.withLock { storage in
            var applied = 0
            var fenced = 0
            func owns(_ partition: Int) -> Bool { storage.leases[partition].owner == acknowledgement.relayID }
            for reference in acknowledgement.delivered {
                guard owns(reference.partition) else { fenced += 1; continue }
                guard storage.rows[reference.sequence]?.state == .pending else { continue }
                applied += 1
                if acknowledgement.retainDelivered {
                    storage.rows[reference.sequence]?.state = .delivered
                    storage.rows[reference.sequence]?.finishedAt = acknowledgement.now
                } else {
                    storage.remove(reference.sequence)
                }
            }
            for retry in acknowledgement.retries {
                guard owns(retry.partition) else { fenced += 1; continue }
                guard storage.rows[retry.sequence]?.state == .pending else { continue }
                applied += 1
                storage.rows[retry.sequence]?.record.attempts += 1
                storage.rows[retry.sequence]?.record.lastError = retry.error
                storage.rows[retry.sequence]?.availableAt = retry.availableAt
            }
            for dead in acknowledgement.deadLetters {
                guard owns(dead.partition) else { fenced += 1; continue }
                guard storage.rows[dead.sequence]?.state == .pending else { continue }
                applied += 1
                storage.rows[dead.sequence]?.record.attempts += 1
                storage.rows[dead.sequence]?.record.lastError = dead.error
                storage.rows[dead.sequence]?.state = .dead
                storage.rows[dead.sequence]?.finishedAt = acknowledgement.now
            }
            return OutboxAcknowledgementResult(applied: applied, fenced: fenced)
        }
    }

    public func waitForNewMessages(timeout: Duration) async {
        await wakeUpCursor.wait(on: newMessages, timeout: timeout)
    }

    public func removeDelivered(finishedBefore cutoff: Date, limit: Int) async throws -> Int {
        storage.withLock { storage in
            let doomed = storage.rows.values
                .filter { $0.state == .delivered && ($0.finishedAt ?? .distantPast) < cutoff }
                .map(\.record.sequence).sorted().prefix(limit)
            for sequence in doomed { storage.remove(sequence) }
            return doomed.count
        }
    }

    public func status(now: Date) async throws -> OutboxStatus {
        storage.withLock { storage in
            let pending = storage.rows.values.filter { $0.state == .pending }
            let oldest = pending.map(\.record.message.createdAt).min()
            let live = storage.registrations.values.filter { $0.expiresAt > now }
            let relays = live.map { registration in
                OutboxRelayInfo(
                    relayID: registration.relayID,
                    partitions: storage.leases.filter { $0.owner == registration.relayID }.map(\.partition),
                    inFlight: storage.inFlight[registration.relayID] ?? 0,
                    expiresAt: registration.expiresAt,
                    published: storage.published[registration.relayID] ?? 0)
            }.sorted { $0.relayID < $1.relayID }
            return OutboxStatus(
                pending: pending.count,
                retrying: pending.filter { $0.record.attempts > 0 }.count,
                inFlight: relays.reduce(0) { $0 + $1.inFlight },
                dead: storage.rows.values.filter { $0.state == .dead }.count,
                deliveredRetained: storage.rows.values.filter { $0.state == .delivered }.count,
                oldestPendingAge: oldest.map { .milliseconds(Int64(max(0, now.timeIntervalSince($0)) * 1000)) },
                partitionCount: partitionCount,
                relays: relays,
                leases: storage.leases)
        }
    }

    public func backlog(now: Date, countLimit: Int) async throws -> OutboxBacklog {
        storage.withLock { storage in
            let pending = storage.rows.values.filter { $0.state == .pending }
            let first = pending.min { $0.record.sequence < $1.record.sequence }
            return OutboxBacklog(
                pending: min(pending.count, countLimit),
                dead: min(storage.rows.values.filter { $0.state == .dead }.count, countLimit),
                countLimit: countLimit,
                oldestPendingAge: first.map { .milliseconds(Int64(max(0, now.timeIntervalSince($0.record.message.createdAt)) * 1000)) })
        }
    }

    public func deadLetters(limit: Int, afterSequence: Int64?) async throws -> [OutboxDeadLetter] {
        storage.withLock { storage in
            storage.rows.values
                .filter { $0.state == .dead && $0.record.sequence > (afterSequence ?? 0) }
                .sorted { $0.record.sequence < $1.record.sequence }
                .prefix(limit)
                .map { OutboxDeadLetter(record: $0.record, failedAt: $0.finishedAt ?? .distantPast) }
        }
    }

    public func retryDeadLetters(sequences: [Int64], now: Date) async throws -> Int {
        let count = storage.withLock { storage in
            var count = 0
            for sequence in sequences where storage.rows[sequence]?.state == .dead {
                storage.rows[sequence]?.state = .pending
                storage.rows[sequence]?.record.attempts = 0
                storage.rows[sequence]?.availableAt = .distantPast
                storage.rows[sequence]?.finishedAt = nil
                count += 1
            }
            return count
        }
        if count > 0 { newMessages.signal() }
        return count
    }

    public func discardDeadLetters(sequences: [Int64]) async throws -> Int {
        storage.withLock { storage in
            var count = 0
            for sequence in sequences where storage.rows[sequence]?.state == .dead {
                storage.remove(sequence)
                count += 1
            }
            return count
        }
    }
}
