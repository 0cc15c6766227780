public import Foundation
public import Outbox
import Synchronization

/// An inbox store in memory, for tests of consumers: the handler writes rows into an
/// ``InMemoryInboxTransaction`` that commit with the inbox record, or not at all.
public final class InMemoryInboxStore: OutboxInboxStore, Sendable {
    public typealias Handler = @Sendable (OutboxInboxMessage, InMemoryInboxTransaction) async throws -> Void

    private struct Storage {
        var handled: [String: [String: Date]] = [:]
        var inProgress: Set<String> = []
        var rows: [String] = []
        var deadLetters: [OutboxInboxDeadLetter] = []
        var nextDeadLetterID: Int64 = 1
        var unavailable = false
    }

    private let storage = Mutex(Storage())

    public init() {}

    /// Rows committed by handlers, in commit order.
    public var rows: [String] { storage.withLock { $0.rows } }

    /// While set, every call fails as a store outage (``OutboxError`` `.storeUnavailable`).
    public func setUnavailable(_ unavailable: Bool) { storage.withLock { $0.unavailable = unavailable } }

    /// Whether the group has a record of the message.
    public func isRecorded(_ identity: String, group: String) -> Bool { storage.withLock { $0.handled[group]?[identity] != nil } }

    public func migrateInbox() async throws {}

    public func handleOnce(_ message: OutboxInboxMessage, group: String, now: Date, handler: @escaping Handler) async throws -> OutboxInboxOutcome {
        let key = group + "\u{0}" + message.identity
        let reserved = try storage.withLock { storage -> Bool? in
            if storage.unavailable { throw OutboxError(code: .storeUnavailable, operation: "handle", message: "The in-memory inbox is unavailable.") }
            if storage.handled[group]?[message.identity] != nil { return nil }
            // A unique key on (group, identity) makes a second transaction wait for the first; here it retries.
            if storage.inProgress.contains(key) { return false }
            storage.inProgress.insert(key)
            return true
        }
        guard let reserved else { return .duplicate }
        guard reserved else { throw OutboxError(code: .storeUnavailable, operation: "handle", message: "The message is being handled by another consumer.") }
        let transaction = InMemoryInboxTransaction()
        do {
            try await handler(message, transaction)
        } catch {
            storage.withLock { _ = $0.inProgress.remove(key) }
            throw error
        }
        storage.withLock { storage in
            storage.inProgress.remove(key)
            storage.handled[group, default: [:]][message.identity] = now
            storage.rows.append(contentsOf: transaction.rows)
        }
        return .handled
    }

    public func deadLetter(_ message: OutboxInboxMessage, group: String, reason: String, attempts: Int, now: Date) async throws {
        try storage.withLock { storage in
            if storage.unavailable { throw OutboxError(code: .storeUnavailable, operation: "dead-letter", message: "The in-memory inbox is unavailable.") }
            storage.handled[group, default: [:]][message.identity] = now
            storage.deadLetters.append(OutboxInboxDeadLetter(id: storage.nextDeadLetterID, group: group, message: message, reason: reason,
                                                             attempts: attempts, failedAt: now))
            storage.nextDeadLetterID += 1
        }
    }

    public func inboxDeadLetters(group: String, limit: Int, afterID: Int64?) async throws -> [OutboxInboxDeadLetter] {
        storage.withLock { storage in
            Array(storage.deadLetters.filter { $0.group == group && $0.id > (afterID ?? 0) }.prefix(limit))
        }
    }

    public func takeInboxDeadLetters(group: String, ids: [Int64]) async throws -> [OutboxInboxDeadLetter] {
        storage.withLock { storage in
            let taken = storage.deadLetters.filter { $0.group == group && ids.contains($0.id) }
            storage.deadLetters.removeAll { $0.group == group && ids.contains($0.id) }
            for letter in taken { storage.handled[group]?[letter.message.identity] = nil }
            return taken
        }
    }

    public func removeHandled(group: String, before cutoff: Date, limit: Int) async throws -> Int {
        storage.withLock { storage in
            let old = (storage.handled[group] ?? [:]).filter { $0.value < cutoff }.keys.sorted().prefix(limit)
            for identity in old { storage.handled[group]?[identity] = nil }
            return old.count
        }
    }
}

/// The writes of one handler run, committed with its inbox record.
public final class InMemoryInboxTransaction: Sendable {
    private let storage = Mutex<[String]>([])

    /// Writes a row (visible once the transaction commits).
    public func insert(_ row: String) { storage.withLock { $0.append(row) } }

    var rows: [String] { storage.withLock { $0 } }
}

/// A broker log in memory with consumer-group offsets, for tests of consumers: messages appended
/// to partitions; ``source(group:partitions:)`` reads them from the group's committed offsets.
public final class InMemoryInboxBroker: Sendable {
    private struct Storage {
        var logs: [OutboxInboxPartition: [OutboxInboxMessage]] = [:]
        var committed: [String: [OutboxInboxPartition: Int64]] = [:]
        var commits: [(group: String, positions: [OutboxInboxPartition: Int64])] = []
    }

    private let storage = Mutex(Storage())

    public init() {}

    /// Appends a message; returns its offset.
    @discardableResult
    public func append(_ partition: OutboxInboxPartition, key: String?, payload: String, headers: [OutboxHeader] = []) -> Int64 {
        storage.withLock { storage in
            let offset = Int64(storage.logs[partition]?.count ?? 0)
            storage.logs[partition, default: []].append(OutboxInboxMessage(partition: partition, offset: offset, key: key,
                                                                           payload: Array(payload.utf8), headers: headers))
            return offset
        }
    }

    /// The group's committed position of a partition (0 when none).
    public func committed(group: String, _ partition: OutboxInboxPartition) -> Int64 {
        storage.withLock { $0.committed[group]?[partition] ?? 0 }
    }

    /// Every commit made, in order.
    public var commits: [(group: String, positions: [OutboxInboxPartition: Int64])] { storage.withLock { $0.commits } }

    /// A consumer of `group` owning `partitions`, starting at the group's committed offsets.
    public func source(group: String, partitions: Set<OutboxInboxPartition>) -> InMemoryInboxSource {
        InMemoryInboxSource(broker: self, group: group, partitions: partitions)
    }

    func read(_ partition: OutboxInboxPartition, from offset: Int64, limit: Int) -> [OutboxInboxMessage] {
        storage.withLock { storage in
            let log = storage.logs[partition] ?? []
            guard offset < log.count else { return [] }
            return Array(log[Int(offset)..<min(log.count, Int(offset) + limit)])
        }
    }

    func commit(group: String, _ positions: [OutboxInboxPartition: Int64]) {
        storage.withLock { storage in
            storage.commits.append((group, positions))
            for (partition, position) in positions { storage.committed[group, default: [:]][partition] = position }
        }
    }
}

/// One consumer's view of an ``InMemoryInboxBroker``.
public final class InMemoryInboxSource: OutboxInboxSource, Sendable {
    private struct State {
        var owned: Set<OutboxInboxPartition>
        var next: [OutboxInboxPartition: Int64] = [:]
        var revoking: Set<OutboxInboxPartition> = []
        var released: Set<OutboxInboxPartition> = []
        var closed = false
    }

    private let broker: InMemoryInboxBroker
    private let group: String
    private let state: Mutex<State>

    init(broker: InMemoryInboxBroker, group: String, partitions: Set<OutboxInboxPartition>) {
        self.broker = broker
        self.group = group
        state = Mutex(State(owned: partitions))
    }

    /// Takes partitions away at the next poll, as a rebalance does.
    public func revoke(_ partitions: Set<OutboxInboxPartition>) { state.withLock { $0.revoking.formUnion(partitions) } }

    /// Partitions the consumer has let go of after a revocation.
    public var released: Set<OutboxInboxPartition> { state.withLock { $0.released } }

    /// Whether the consumer left the group.
    public var isClosed: Bool { state.withLock { $0.closed } }

    public func poll(timeout: Duration) async throws -> OutboxInboxPoll {
        let deadline = ContinuousClock.now + timeout
        while true {
            let answer = state.withLock { state -> OutboxInboxPoll? in
                if !state.revoking.isEmpty {
                    let revoked = state.revoking
                    state.revoking = []
                    state.owned.subtract(revoked)
                    return OutboxInboxPoll(revoked: revoked)
                }
                var messages: [OutboxInboxMessage] = []
                for partition in state.owned.sorted() {
                    let from = state.next[partition] ?? broker.committed(group: group, partition)
                    let read = broker.read(partition, from: from, limit: 50)
                    messages += read
                    if let last = read.last { state.next[partition] = last.offset + 1 }
                }
                return messages.isEmpty ? nil : OutboxInboxPoll(messages: messages)
            }
            if let answer { return answer }
            if ContinuousClock.now >= deadline { return OutboxInboxPoll() }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    public func commit(_ positions: [OutboxInboxPartition: Int64]) async throws { broker.commit(group: group, positions) }

    public func releaseRevoked(_ partitions: Set<OutboxInboxPartition>) async { state.withLock { $0.released.formUnion(partitions) } }

    public func close() async { state.withLock { $0.closed = true } }
}
