import Foundation
import MetricsTestKit
import Outbox
import OutboxTesting
import ServiceLifecycle
import Synchronization
import Testing

/// The inbox consumer's guarantees (I1–I5) over the in-memory store and broker; the stores' own
/// inbox suites run the same against real databases.
@Suite struct InboxConsumerTests {
    static let partitions = (0..<4).map { OutboxInboxPartition(topic: "orders", partition: Int32($0)) }

    /// Publishes `perKey` messages for each of `keys` keys (each key on one partition), every
    /// message with an `outbox-id`; with `duplicates`, each message appears twice in the log.
    static func publish(_ broker: InMemoryInboxBroker, keys: Int, perKey: Int, duplicates: Bool = false) -> [String: [String]] {
        var expected: [String: [String]] = [:]
        for index in 0..<perKey {
            for key in 0..<keys {
                let id = UUID().uuidString.lowercased()
                let partition = partitions[key % partitions.count]
                let copies = duplicates ? 2 : 1
                for _ in 0..<copies {
                    broker.append(partition, key: "k\(key)", payload: "k\(key)#\(index)", headers: [OutboxHeader("outbox-id", id)])
                }
                expected["k\(key)", default: []].append("k\(key)#\(index)")
            }
        }
        return expected
    }

    /// Counts handler runs per message text.
    final class Attempts: Sendable {
        private let counts = Mutex<[String: Int]>([:])

        func next(_ text: String) -> Int {
            counts.withLock { counts in
                counts[text, default: 0] += 1
                return counts[text]!
            }
        }

        subscript(_ text: String) -> Int? { counts.withLock { $0[text] } }
    }

    static func handler(failing: (@Sendable (String, Int) -> Bool)? = nil) -> (InMemoryInboxStore.Handler, Attempts) {
        let attempts = Attempts()
        let handler: InMemoryInboxStore.Handler = { message, transaction in
            let text = String(decoding: message.payload, as: UTF8.self)
            let attempt = attempts.next(text)
            transaction.insert(text)
            if let failing, failing(text, attempt) { throw HandlerFailure(text: text) }
        }
        return (handler, attempts)
    }

    struct HandlerFailure: Error, CustomStringConvertible {
        let text: String
        var description: String { "handler refused \(text)" }
    }

    static func configuration(_ group: String = "projection") -> OutboxInboxConfiguration {
        OutboxInboxConfiguration(group: group, maximumConcurrentHandlers: 8,
                                 retryPolicy: OutboxRetryPolicy(maximumAttempts: 3, initialBackoff: .milliseconds(5), maximumBackoff: .milliseconds(20)),
                                 commitInterval: .milliseconds(20), pollTimeout: .milliseconds(20), shutdownGracePeriod: .seconds(5))
    }

    static func byKey(_ rows: [String]) -> [String: [String]] {
        Dictionary(grouping: rows) { String($0.split(separator: "#")[0]) }
    }

    /// Runs a consumer until `condition`, then shuts it down gracefully.
    static func consume(_ store: InMemoryInboxStore, _ source: InMemoryInboxSource, _ handler: @escaping InMemoryInboxStore.Handler,
                        _ configuration: OutboxInboxConfiguration = InboxConsumerTests.configuration(),
                        until condition: @escaping @Sendable () async throws -> Bool) async throws {
        let consumer = OutboxInboxConsumer(store: store, source: source, configuration: configuration,
                                           logger: OutboxStoreConformance.defaultLogger, handler: handler)
        let group = ServiceGroup(services: [consumer], logger: OutboxStoreConformance.defaultLogger)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            try await waitUntil("the consumer is done", timeout: .seconds(30), condition)
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }

    @Test func everyMessageIsHandledOnceInKeyOrderDespiteRedeliveries() async throws {
        let broker = InMemoryInboxBroker()
        let expected = Self.publish(broker, keys: 20, perKey: 10, duplicates: true)
        let store = InMemoryInboxStore()
        let source = broker.source(group: "projection", partitions: Set(Self.partitions))
        let (handler, _) = Self.handler()
        try await Self.consume(store, source, handler) { store.rows.count == 200 && broker.committed(group: "projection", Self.partitions[0]) == 100 }
        #expect(Self.byKey(store.rows) == expected, "each message once, per key in order")
        for partition in Self.partitions {
            #expect(broker.committed(group: "projection", partition) == 100, "every offset is committed, duplicates included")
        }
        #expect(source.isClosed, "graceful shutdown leaves the group")
    }

    @Test func aFailingHandlerRollsBackHoldsOnlyItsKeyAndIsRetried() async throws {
        let broker = InMemoryInboxBroker()
        let expected = Self.publish(broker, keys: 8, perKey: 5)
        let store = InMemoryInboxStore()
        // The first message of k0 fails twice, then succeeds; meanwhile the other keys go on.
        let attempts = Attempts()
        let othersWentOn = Attempts()
        let handler: InMemoryInboxStore.Handler = { message, transaction in
            let text = String(decoding: message.payload, as: UTF8.self)
            transaction.insert(text)
            if text == "k1#4" && !store.rows.contains("k0#0") { _ = othersWentOn.next("yes") }
            if text == "k0#0", attempts.next(text) <= 2 { throw HandlerFailure(text: text) }
        }
        var configuration = Self.configuration()
        configuration.retryPolicy = OutboxRetryPolicy(maximumAttempts: 3, initialBackoff: .milliseconds(100), maximumBackoff: .milliseconds(200))
        try await Self.consume(store, broker.source(group: "projection", partitions: Set(Self.partitions)), handler, configuration) {
            store.rows.count == 40
        }
        #expect(Self.byKey(store.rows) == expected, "no write of a failed attempt committed, and k0 kept its order")
        #expect(attempts["k0#0"] == 3)
        #expect(othersWentOn["yes"] != nil, "other keys went on while k0 waited for its retry")
    }

    @Test func aPoisonMessageIsDeadLetteredAndItsKeyGoesOn() async throws {
        let broker = InMemoryInboxBroker()
        _ = Self.publish(broker, keys: 4, perKey: 3)
        let store = InMemoryInboxStore()
        let (handler, attempts) = Self.handler { text, _ in text == "k2#1" }
        let metrics = TestMetrics()
        var configuration = Self.configuration()
        configuration.metricsFactory = metrics
        try await Self.consume(store, broker.source(group: "projection", partitions: Set(Self.partitions)), handler, configuration) {
            store.rows.count == 11 && broker.committed(group: "projection", Self.partitions[2]) == 3
        }
        #expect(Self.byKey(store.rows)["k2"] == ["k2#0", "k2#2"], "the key went on after its poison")
        // Three attempts count; the handler may also have run once inside a batch that then
        // failed and was handled again one message at a time.
        #expect((3...4).contains(attempts["k2#1"] ?? 0))
        let group = [("group", "projection")]
        let handled = try metrics.expectCounter("outbox_inbox_messages_handled_total", group).totalValue
        let skipped = (try? metrics.expectCounter("outbox_inbox_duplicates_skipped_total", group).totalValue) ?? 0
        #expect(handled + skipped == 11 && handled <= 11, "handled \(handled), skipped after a failed batch \(skipped)")
        #expect(try metrics.expectCounter("outbox_inbox_handler_failures_total", group).totalValue == 3)
        #expect(try metrics.expectCounter("outbox_inbox_messages_dead_lettered_total", group).totalValue == 1)
        #expect(try !metrics.expectTimer("outbox_inbox_handle_duration_seconds", group).values.isEmpty)
        let letters = try await store.inboxDeadLetters(group: "projection", limit: 10, afterID: nil)
        #expect(letters.count == 1 && letters[0].attempts == 3 && letters[0].reason == "handler refused k2#1")
        let taken = try await store.takeInboxDeadLetters(group: "projection", ids: letters.map(\.id))
        #expect(taken.map(\.message.offset) == [1] && !store.isRecorded(taken[0].message.identity, group: "projection"))
    }

    @Test func aConsumerThatDiesBeforeCommittingIsFollowedWithoutDoubleHandling() async throws {
        let broker = InMemoryInboxBroker()
        let expected = Self.publish(broker, keys: 8, perKey: 10)
        let store = InMemoryInboxStore()
        let (handler, _) = Self.handler()
        // The first consumer never gets to commit (a crash right after its transactions).
        var lazy = Self.configuration()
        lazy.commitInterval = .seconds(3_600)
        let first = OutboxInboxConsumer(store: store, source: broker.source(group: "projection", partitions: Set(Self.partitions)),
                                        configuration: lazy, logger: OutboxStoreConformance.defaultLogger, handler: handler)
        let running = Task { try await first.run() }
        try await waitUntil("the first consumer handled some") { store.rows.count >= 30 }
        running.cancel()
        _ = try? await running.value
        #expect(Self.partitions.allSatisfy { broker.committed(group: "projection", $0) == 0 }, "nothing was committed")
        try await Self.consume(store, broker.source(group: "projection", partitions: Set(Self.partitions)), handler) { store.rows.count == 80 }
        #expect(Self.byKey(store.rows) == expected, "what the first handled is skipped, the rest handled once")
    }

    @Test func aRebalanceHandsPartitionsOverWithoutLossOrDoubleHandling() async throws {
        let broker = InMemoryInboxBroker()
        let expected = Self.publish(broker, keys: 8, perKey: 25)
        let store = InMemoryInboxStore()
        let slow: InMemoryInboxStore.Handler = { message, transaction in
            try await Task.sleep(for: .milliseconds(2))
            transaction.insert(String(decoding: message.payload, as: UTF8.self))
        }
        let moving = Set(Self.partitions.prefix(2))
        let firstSource = broker.source(group: "projection", partitions: Set(Self.partitions))
        let consumer = OutboxInboxConsumer(store: store, source: firstSource, configuration: Self.configuration(),
                                           logger: OutboxStoreConformance.defaultLogger, handler: slow)
        let group = ServiceGroup(services: [consumer], logger: OutboxStoreConformance.defaultLogger)
        let running = Task { try await group.run() }
        try await waitUntil("some are handled") { store.rows.count >= 40 }
        firstSource.revoke(moving)
        try await waitUntil("the first consumer lets the partitions go") { firstSource.released == moving }
        // Offsets never ahead of commits: everything below the committed position was handled.
        // Partition p holds k<p>#0, k<p+4>#0, k<p>#1, …: offset o is key (o even ? p : p+4), index o / 2.
        let handled = Set(store.rows)
        for partition in moving {
            let position = broker.committed(group: "projection", partition)
            let p = Int(partition.partition)
            let below = (0..<Int(position)).map { "k\($0 % 2 == 0 ? p : p + 4)#\($0 / 2)" }
            #expect(below.allSatisfy(handled.contains), "committed \(position) on \(partition) passed an unhandled message")
            #expect(position > 0, "the finished work of \(partition) was committed before it was let go")
        }
        try await Self.consume(store, broker.source(group: "projection", partitions: moving), slow) {
            Self.byKey(store.rows).filter { key, _ in ["k0", "k1", "k4", "k5"].contains(key) }.values.reduce(0) { $0 + $1.count } == 100
        }
        try await waitUntil("the first consumer finishes its own partitions") { store.rows.count == 200 }
        await group.triggerGracefulShutdown()
        try await running.value
        #expect(Self.byKey(store.rows) == expected)
    }

    @Test func aStoreOutageCountsNoAttempt() async throws {
        let broker = InMemoryInboxBroker()
        let expected = Self.publish(broker, keys: 2, perKey: 3)
        let store = InMemoryInboxStore()
        store.setUnavailable(true)
        let (handler, _) = Self.handler()
        let consumer = OutboxInboxConsumer(store: store, source: broker.source(group: "projection", partitions: Set(Self.partitions)),
                                           configuration: Self.configuration(), logger: OutboxStoreConformance.defaultLogger, handler: handler)
        let group = ServiceGroup(services: [consumer], logger: OutboxStoreConformance.defaultLogger)
        let running = Task { try await group.run() }
        // Longer than three attempts' backoff: an outage counted as attempts would dead-letter.
        try await Task.sleep(for: .milliseconds(300))
        store.setUnavailable(false)
        try await waitUntil("handled after the outage") { store.rows.count == 6 }
        await group.triggerGracefulShutdown()
        try await running.value
        #expect(Self.byKey(store.rows) == expected)
        #expect(try await store.inboxDeadLetters(group: "projection", limit: 10, afterID: nil).isEmpty)
    }
}

/// A store call that never returns (a driver waiting on a connection the restarted server dropped)
/// is given up after `storeCallTimeout` and tried again, as a store outage: the key goes on. Before,
/// a chaos run on PostgreSQL stalled both consumers for good after a database restart.
@Suite struct InboxHungStoreCallTests {
    @Test func aHungStoreCallIsGivenUpAndTriedAgain() async throws {
        let broker = InMemoryInboxBroker()
        let expected = InboxConsumerTests.publish(broker, keys: 2, perKey: 3)
        let store = HangingOnceInboxStore()
        let (handler, _) = InboxConsumerTests.handler()
        var configuration = InboxConsumerTests.configuration()
        configuration.storeCallTimeout = .milliseconds(200)
        configuration.maximumBatchSize = 1
        let consumer = OutboxInboxConsumer(store: store, source: broker.source(group: "projection", partitions: Set(InboxConsumerTests.partitions)),
                                           configuration: configuration, logger: OutboxStoreConformance.defaultLogger, handler: handler)
        let group = ServiceGroup(services: [consumer], logger: OutboxStoreConformance.defaultLogger)
        let running = Task { try await group.run() }
        // Without the timeout the key waits the full minute for the hung call.
        try await waitUntil("every message handled despite the hung call", timeout: .seconds(10)) { store.inner.rows.count == 6 }
        await group.triggerGracefulShutdown()
        try await running.value
        #expect(store.hung, "the first call hung")
        #expect(InboxConsumerTests.byKey(store.inner.rows) == expected)
        #expect(try await store.inner.inboxDeadLetters(group: "projection", limit: 10, afterID: nil).isEmpty)
    }
}

/// The in-memory inbox, whose first call hangs for a minute without reaching the store and
/// without heeding cancellation, as a driver stuck on a dead connection does.
private final class HangingOnceInboxStore: OutboxInboxStore, Sendable {
    let inner = InMemoryInboxStore()
    private let first = Mutex(true)
    var hung: Bool { !first.withLock { $0 } }

    private func hangTheFirstTime() async {
        guard first.withLock({ first in defer { first = false }; return first }) else { return }
        await Task.detached { try? await Task.sleep(for: .seconds(60)) }.value
    }

    func migrateInbox() async throws {}
    func handleOnce(_ message: OutboxInboxMessage, group: String, now: Date, handler: @escaping InMemoryInboxStore.Handler) async throws -> OutboxInboxOutcome {
        await hangTheFirstTime()
        return try await inner.handleOnce(message, group: group, now: now, handler: handler)
    }
    func handleBatch(_ messages: [OutboxInboxMessage], group: String, now: Date, handler: @escaping InMemoryInboxStore.Handler) async throws -> [OutboxInboxOutcome] {
        await hangTheFirstTime()
        return try await inner.handleBatch(messages, group: group, now: now, handler: handler)
    }
    func deadLetter(_ message: OutboxInboxMessage, group: String, reason: String, attempts: Int, now: Date) async throws {
        try await inner.deadLetter(message, group: group, reason: reason, attempts: attempts, now: now)
    }
    func inboxDeadLetters(group: String, limit: Int, afterID: Int64?) async throws -> [OutboxInboxDeadLetter] {
        try await inner.inboxDeadLetters(group: group, limit: limit, afterID: afterID)
    }
    func takeInboxDeadLetters(group: String, ids: [Int64]) async throws -> [OutboxInboxDeadLetter] {
        try await inner.takeInboxDeadLetters(group: group, ids: ids)
    }
    func removeHandled(group: String, before cutoff: Date, limit: Int) async throws -> Int {
        try await inner.removeHandled(group: group, before: cutoff, limit: limit)
    }
}
