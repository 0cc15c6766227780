import Foundation
public import Logging
public import Outbox
import ServiceLifecycle
import Synchronization

/// A store under the inbox conformance suite: a fresh store with a projection table beside it,
/// and a handler writing into that table in the store's own transaction.
public protocol OutboxInboxStoreHarness: Sendable {
    associatedtype Store: OutboxInboxStore
    /// The backend's name in failure messages.
    var name: String { get }
    /// A fresh store (its own tables), inbox migrated, with an empty projection table.
    func makeStore() async throws -> Store
    /// A handler that inserts the message's payload (UTF-8 text) as a row of the projection, in the
    /// handler's transaction, then runs `after`, which may throw (rolling both back).
    func projecting(into store: Store, after: @escaping @Sendable (OutboxInboxMessage) throws -> Void) -> Store.Handler
    /// The projection's rows, in insertion order.
    func projection(of store: Store) async throws -> [String]
    /// Releases the store's connections.
    func close(_ store: Store) async throws
}

/// The inbox guarantees (I1–I5) as checks that run against any store, with a consumer reading an
/// in-memory broker (the store is what is under test; the Kafka consumer has its own tests).
public struct OutboxInboxConformance<Harness: OutboxInboxStoreHarness>: Sendable {
    /// One guarantee, checked end to end.
    public enum Check: String, CaseIterable, Sendable, CustomStringConvertible {
        /// I2: a message delivered twice (same `outbox-id`) is handled once, per key in order.
        case duplicatesAreSkipped
        /// I1: a handler that throws leaves neither its writes nor the inbox record.
        case failedHandlerRollsBackItsWrites
        /// I3: a consumer that dies after its transactions but before committing offsets is
        /// followed by one that handles nothing twice.
        case crashBetweenCommitAndOffsetCommit
        /// I5: partitions taken away mid-batch are finished, committed and handed over; nothing is
        /// lost or handled twice.
        case rebalanceMidBatch
        /// I4: a handler that always fails is dead-lettered with its reason; its key goes on; the
        /// dead letter can be taken back.
        case poisonHandlerIsDeadLettered
        /// I4: random handler failures over many keys keep every key's order.
        case keyOrderHoldsUnderRetries
        /// Retention: records older than the window are removed in bounded passes, and the message
        /// counts as new afterwards (the window is the deduplication window).
        case retentionRemovesOldRecords
        /// I2 under concurrency: two consumers handling the same message at once handle it once.
        case concurrentDeliveriesAreHandledOnce
        /// Consumer groups are independent.
        case groupsAreIndependent
        /// A batch handles each new message once, skips copies and recorded ones, and a failure in
        /// it leaves every message handled with its record or not at all.
        case batchHandlesEachMessageOnce

        public var description: String { rawValue }
    }

    let harness: Harness
    let logger: Logger

    /// Creates the suite for one backend.
    public init(harness: Harness, logger: Logger = OutboxStoreConformance.defaultLogger) {
        self.harness = harness
        self.logger = logger
    }

    /// Runs one check on a fresh store.
    public func run(_ check: Check) async throws {
        let store = try await harness.makeStore()
        do {
            try await run(check, on: store)
        } catch {
            try? await harness.close(store)
            throw error
        }
        try await harness.close(store)
    }

    private func run(_ check: Check, on store: Harness.Store) async throws {
        switch check {
        case .duplicatesAreSkipped: try await duplicatesAreSkipped(store)
        case .failedHandlerRollsBackItsWrites: try await failedHandlerRollsBackItsWrites(store)
        case .crashBetweenCommitAndOffsetCommit: try await crashBetweenCommitAndOffsetCommit(store)
        case .rebalanceMidBatch: try await rebalanceMidBatch(store)
        case .poisonHandlerIsDeadLettered: try await poisonHandlerIsDeadLettered(store)
        case .keyOrderHoldsUnderRetries: try await keyOrderHoldsUnderRetries(store)
        case .retentionRemovesOldRecords: try await retentionRemovesOldRecords(store)
        case .concurrentDeliveriesAreHandledOnce: try await concurrentDeliveriesAreHandledOnce(store)
        case .groupsAreIndependent: try await groupsAreIndependent(store)
        case .batchHandlesEachMessageOnce: try await batchHandlesEachMessageOnce(store)
        }
    }

    // MARK: - Checks

    func duplicatesAreSkipped(_ store: Harness.Store) async throws {
        let broker = InMemoryInboxBroker()
        let expected = Self.publish(broker, keys: 12, perKey: 8, duplicates: true)
        try await consume(store, broker.source(group: "g", partitions: Set(Self.partitions)), harness.projecting(into: store) { _ in }) {
            try await harness.projection(of: store).count == 96 && broker.committed(group: "g", Self.partitions[0]) == 48
        }
        try expect(Self.byKey(try await harness.projection(of: store)) == expected, "each message once, per key in order")
    }

    func failedHandlerRollsBackItsWrites(_ store: Harness.Store) async throws {
        let message = Self.message(key: "k", payload: "rolled back", id: UUID())
        let failing = harness.projecting(into: store) { _ in throw ConformanceFailure("refused") }
        do {
            _ = try await store.handleOnce(message, group: "g", now: Date(), handler: failing)
            throw ConformanceFailure("[\(harness.name)] handleOnce must throw what the handler throws")
        } catch is ConformanceFailure {}
        try expect(try await harness.projection(of: store).isEmpty, "a failed handler's write must roll back")
        let outcome = try await store.handleOnce(message, group: "g", now: Date(), handler: harness.projecting(into: store) { _ in })
        try expect(outcome == .handled, "after a failure the message is not recorded: handled, got \(outcome)")
        let again = try await store.handleOnce(message, group: "g", now: Date(), handler: harness.projecting(into: store) { _ in })
        try expect(again == .duplicate, "handled once, then a duplicate, got \(again)")
        try expect(try await harness.projection(of: store) == ["rolled back"], "one row for one handled message")
    }

    func crashBetweenCommitAndOffsetCommit(_ store: Harness.Store) async throws {
        let broker = InMemoryInboxBroker()
        let expected = Self.publish(broker, keys: 6, perKey: 10)
        var lazy = Self.configuration()
        lazy.commitInterval = .seconds(3_600)
        let first = OutboxInboxConsumer(store: store, source: broker.source(group: "g", partitions: Set(Self.partitions)),
                                        configuration: lazy, logger: logger, handler: harness.projecting(into: store) { _ in })
        let running = Task { try await first.run() }
        try await waitUntil("[\(harness.name)] the first consumer handled some") { try await harness.projection(of: store).count >= 20 }
        running.cancel()
        _ = try? await running.value
        try expect(Self.partitions.allSatisfy { broker.committed(group: "g", $0) == 0 }, "the crashed consumer committed no offset")
        try await consume(store, broker.source(group: "g", partitions: Set(Self.partitions)), harness.projecting(into: store) { _ in }) {
            try await harness.projection(of: store).count >= 60
        }
        try expect(Self.byKey(try await harness.projection(of: store)) == expected, "what the first handled is skipped, the rest handled once")
    }

    func rebalanceMidBatch(_ store: Harness.Store) async throws {
        let broker = InMemoryInboxBroker()
        let expected = Self.publish(broker, keys: 8, perKey: 15)
        let handler = harness.projecting(into: store) { _ in Thread.sleep(forTimeInterval: 0.002) }
        let moving = Set(Self.partitions.prefix(2))
        let firstSource = broker.source(group: "g", partitions: Set(Self.partitions))
        let consumer = OutboxInboxConsumer(store: store, source: firstSource, configuration: Self.configuration(), logger: logger, handler: handler)
        let group = ServiceGroup(services: [consumer], logger: logger)
        let running = Task { try await group.run() }
        do {
            try await waitUntil("[\(harness.name)] some are handled") { try await harness.projection(of: store).count >= 30 }
            firstSource.revoke(moving)
            try await waitUntil("[\(harness.name)] the first consumer lets the partitions go") { firstSource.released == moving }
            let handled = Set(try await harness.projection(of: store))
            for partition in moving {
                let position = broker.committed(group: "g", partition)
                let p = Int(partition.partition)
                let below = (0..<Int(position)).map { "k\($0 % 2 == 0 ? p : p + 4)#\($0 / 2)" }
                try expect(below.allSatisfy(handled.contains), "committed \(position) on \(partition) passed an unhandled message")
            }
            try await consume(store, broker.source(group: "g", partitions: moving), handler) {
                Self.byKey(try await harness.projection(of: store)).filter { ["k0", "k1", "k4", "k5"].contains($0.key) }.values.reduce(0) { $0 + $1.count } == 60
            }
            try await waitUntil("[\(harness.name)] the first consumer finishes its own partitions") { try await harness.projection(of: store).count == 120 }
        } catch {
            running.cancel()
            throw error
        }
        await group.triggerGracefulShutdown()
        try await running.value
        try expect(Self.byKey(try await harness.projection(of: store)) == expected, "nothing lost or handled twice across the rebalance")
    }

    func poisonHandlerIsDeadLettered(_ store: Harness.Store) async throws {
        let broker = InMemoryInboxBroker()
        let hostileKey = "k2'; DROP TABLE x; --"
        let poisonID = UUID()
        for index in 0..<3 {
            for key in ["k0", "k1", hostileKey] {
                let isPoison = key == hostileKey && index == 1
                broker.append(Self.partitions[key == hostileKey ? 2 : Int(key.dropFirst())!], key: key, payload: "\(key)#\(index)",
                              headers: [OutboxHeader("outbox-id", (isPoison ? poisonID : UUID()).uuidString.lowercased()),
                                        OutboxHeader("x-note", "<b>'\"")])
            }
        }
        let handler = harness.projecting(into: store) { message in
            if message.outboxID == poisonID { throw ConformanceFailure("cannot project \(message.offset)") }
        }
        try await consume(store, broker.source(group: "g", partitions: Set(Self.partitions)), handler) {
            try await harness.projection(of: store).count == 8 && broker.committed(group: "g", Self.partitions[2]) == 3
        }
        let rows = try await harness.projection(of: store)
        try expect(rows.filter { $0.hasPrefix(hostileKey) } == ["\(hostileKey)#0", "\(hostileKey)#2"], "the key went on after its poison: \(rows)")
        let letters = try await store.inboxDeadLetters(group: "g", limit: 10, afterID: nil)
        try expect(letters.count == 1, "one dead letter expected, got \(letters.count)")
        let letter = letters[0]
        try expect(letter.attempts == 3 && letter.reason.contains("cannot project 1"), "attempts and reason kept: \(letter.attempts), \(letter.reason)")
        try expect(letter.message.key == hostileKey && letter.message.payload == Array("\(hostileKey)#1".utf8)
                   && letter.message.header("x-note") == "<b>'\"" && letter.message.outboxID == poisonID && letter.message.offset == 1,
                   "the message is kept byte-exact with its headers")
        try expect(try await store.inboxDeadLetters(group: "other", limit: 10, afterID: nil).isEmpty, "dead letters are per group")
        let taken = try await store.takeInboxDeadLetters(group: "g", ids: [letter.id])
        try expect(taken.map(\.id) == [letter.id], "the dead letter is taken back")
        try expect(try await store.inboxDeadLetters(group: "g", limit: 10, afterID: nil).isEmpty, "and is gone")
        let retried = try await store.handleOnce(taken[0].message, group: "g", now: Date(), handler: harness.projecting(into: store) { _ in })
        try expect(retried == .handled, "a taken-back dead letter can be handled again, got \(retried)")
    }

    func keyOrderHoldsUnderRetries(_ store: Harness.Store) async throws {
        let broker = InMemoryInboxBroker()
        let expected = Self.publish(broker, keys: 16, perKey: 12)
        let failures = Mutex(0)
        let handler = harness.projecting(into: store) { message in
            // About one attempt in five fails, never the fourth attempt of a message.
            var generator = SystemRandomNumberGenerator()
            if Int.random(in: 0..<5, using: &generator) == 0 && message.offset % 7 != 3 {
                failures.withLock { $0 += 1 }
                throw ConformanceFailure("flaky")
            }
        }
        var configuration = Self.configuration()
        configuration.retryPolicy = OutboxRetryPolicy(maximumAttempts: 50, initialBackoff: .milliseconds(1), maximumBackoff: .milliseconds(10))
        try await consume(store, broker.source(group: "g", partitions: Set(Self.partitions)), handler, configuration) {
            try await harness.projection(of: store).count == 192
        }
        try expect(Self.byKey(try await harness.projection(of: store)) == expected, "every key in order, each message once")
        try expect(failures.withLock { $0 } > 0, "the handler failed at least once")
    }

    func retentionRemovesOldRecords(_ store: Harness.Store) async throws {
        let messages = (0..<5).map { Self.message(key: "r\($0)", payload: "kept \($0)", id: UUID()) }
        let handled = Date().addingTimeInterval(-7_200)
        for message in messages {
            _ = try await store.handleOnce(message, group: "g", now: handled, handler: harness.projecting(into: store) { _ in })
        }
        _ = try await store.handleOnce(Self.message(key: "new", payload: "recent", id: UUID()), group: "g", now: Date(),
                                       handler: harness.projecting(into: store) { _ in })
        let none = try await store.removeHandled(group: "g", before: handled.addingTimeInterval(-60), limit: 10)
        try expect(none == 0, "records younger than the cutoff stay")
        var removed: [Int] = []
        while true {
            let count = try await store.removeHandled(group: "g", before: Date().addingTimeInterval(-3_600), limit: 2)
            if count == 0 { break }
            removed.append(count)
        }
        try expect(removed == [2, 2, 1], "cleanup removes in bounded passes of 2, only the old ones: \(removed)")
        let again = try await store.handleOnce(messages[0], group: "g", now: Date(), handler: harness.projecting(into: store) { _ in })
        try expect(again == .handled, "past the window a redelivery is handled again (the window is the deduplication window)")
    }

    func concurrentDeliveriesAreHandledOnce(_ store: Harness.Store) async throws {
        let message = Self.message(key: "c", payload: "contended", id: UUID())
        let slow = harness.projecting(into: store) { _ in Thread.sleep(forTimeInterval: 0.2) }
        let outcomes = try await withThrowingTaskGroup(of: OutboxInboxOutcome.self) { group in
            for _ in 0..<2 {
                group.addTask {
                    // A store may answer a contended record with an outage (retried by the consumer).
                    while true {
                        do {
                            return try await store.handleOnce(message, group: "g", now: Date(), handler: slow)
                        } catch let error as OutboxError where error.code == .storeUnavailable {
                            try await Task.sleep(for: .milliseconds(50))
                        }
                    }
                }
            }
            var outcomes: [OutboxInboxOutcome] = []
            for try await outcome in group { outcomes.append(outcome) }
            return outcomes
        }
        try expect(outcomes.sorted { "\($0)" < "\($1)" } == [.duplicate, .handled], "one handled, one duplicate: \(outcomes)")
        try expect(try await harness.projection(of: store) == ["contended"], "the handler's write happened once")
    }

    func groupsAreIndependent(_ store: Harness.Store) async throws {
        let message = Self.message(key: "k", payload: "both", id: UUID())
        let first = try await store.handleOnce(message, group: "billing", now: Date(), handler: harness.projecting(into: store) { _ in })
        let second = try await store.handleOnce(message, group: "shipping", now: Date(), handler: harness.projecting(into: store) { _ in })
        try expect(first == .handled && second == .handled, "each group handles the message: \(first), \(second)")
        try expect(try await harness.projection(of: store) == ["both", "both"], "two rows, one per group")
        let positional = OutboxInboxMessage(partition: Self.partitions[0], offset: 7, key: nil, payload: Array("positional".utf8), headers: [])
        let once = try await store.handleOnce(positional, group: "billing", now: Date(), handler: harness.projecting(into: store) { _ in })
        let twice = try await store.handleOnce(positional, group: "billing", now: Date(), handler: harness.projecting(into: store) { _ in })
        try expect(once == .handled && twice == .duplicate, "without an outbox-id the position identifies the message")
    }

    func batchHandlesEachMessageOnce(_ store: Harness.Store) async throws {
        let (a, b, c) = (Self.message(key: "a", payload: "a", id: UUID()), Self.message(key: "b", payload: "b", id: UUID()),
                         Self.message(key: "c", payload: "c", id: UUID()))
        _ = try await store.handleOnce(c, group: "g", now: Date(), handler: harness.projecting(into: store) { _ in })
        let outcomes = try await store.handleBatch([a, b, a, c], group: "g", now: Date(), handler: harness.projecting(into: store) { _ in })
        try expect(outcomes == [.handled, .handled, .duplicate, .duplicate], "new, new, copy, recorded: got \(outcomes)")
        try expect(try await harness.projection(of: store) == ["c", "a", "b"], "each new message handled once")
        let (d, e) = (Self.message(key: "d", payload: "d", id: UUID()), Self.message(key: "e", payload: "e", id: UUID()))
        do {
            _ = try await store.handleBatch([d, e], group: "g", now: Date(), handler: harness.projecting(into: store) { message in
                if message.payload == Array("e".utf8) { throw ConformanceFailure("e refused") }
            })
            throw ConformanceFailure("[\(harness.name)] a batch whose handler throws must throw")
        } catch let failure as ConformanceFailure where failure.description == "e refused" {}
        let rows = try await harness.projection(of: store)
        try expect(!rows.contains("e"), "the failed message's write rolled back")
        let again = try await store.handleOnce(d, group: "g", now: Date(), handler: harness.projecting(into: store) { _ in })
        try expect((again == .duplicate) == rows.contains("d"), "d is recorded exactly when its write committed")
        try expect(try await harness.projection(of: store).filter { $0 == "d" }.count == 1, "d handled once in all")
    }

    // MARK: - Helpers

    static var partitions: [OutboxInboxPartition] { (0..<4).map { OutboxInboxPartition(topic: "orders", partition: Int32($0)) } }

    static func message(key: String?, payload: String, id: UUID) -> OutboxInboxMessage {
        OutboxInboxMessage(partition: partitions[0], offset: 0, key: key, payload: Array(payload.utf8),
                           headers: [OutboxHeader("outbox-id", id.uuidString.lowercased())])
    }

    /// `perKey` messages for each of `keys` keys, key `k<n>` on partition `n % 4`, published round
    /// robin over keys; with `duplicates`, each message twice in a row.
    static func publish(_ broker: InMemoryInboxBroker, keys: Int, perKey: Int, duplicates: Bool = false) -> [String: [String]] {
        var expected: [String: [String]] = [:]
        for index in 0..<perKey {
            for key in 0..<keys {
                let id = UUID().uuidString.lowercased()
                for _ in 0..<(duplicates ? 2 : 1) {
                    broker.append(partitions[key % 4], key: "k\(key)", payload: "k\(key)#\(index)", headers: [OutboxHeader("outbox-id", id)])
                }
                expected["k\(key)", default: []].append("k\(key)#\(index)")
            }
        }
        return expected
    }

    static func byKey(_ rows: [String]) -> [String: [String]] {
        Dictionary(grouping: rows) { String($0.split(separator: "#")[0]) }
    }

    static func configuration() -> OutboxInboxConfiguration {
        OutboxInboxConfiguration(group: "g", maximumConcurrentHandlers: 8,
                                 retryPolicy: OutboxRetryPolicy(maximumAttempts: 3, maximumPermanentFailureAttempts: 3,
                                                                initialBackoff: .milliseconds(5), maximumBackoff: .milliseconds(20)),
                                 commitInterval: .milliseconds(20), pollTimeout: .milliseconds(20), shutdownGracePeriod: .seconds(10))
    }

    func consume(_ store: Harness.Store, _ source: InMemoryInboxSource, _ handler: Harness.Store.Handler,
                 _ configuration: OutboxInboxConfiguration = Self.configuration(),
                 until condition: @escaping @Sendable () async throws -> Bool) async throws {
        let consumer = OutboxInboxConsumer(store: store, source: source, configuration: configuration, logger: logger, handler: handler)
        let group = ServiceGroup(services: [consumer], logger: logger)
        let running = Task { try await group.run() }
        do {
            try await waitUntil("[\(harness.name)] the consumer is done", timeout: .seconds(60), condition)
        } catch {
            running.cancel()
            throw error
        }
        await group.triggerGracefulShutdown()
        try await running.value
    }

    func expect(_ condition: Bool, _ message: @autoclosure () -> String) throws {
        if !condition { throw ConformanceFailure("[\(harness.name)] \(message())") }
    }
}
