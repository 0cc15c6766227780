import Foundation
import Outbox
import Synchronization

extension OutboxStoreConformance {
    /// Sequences are handed out at insert, transactions commit in another order. A message that
    /// commits late with a smaller sequence than messages already published is still published,
    /// and never after a later message of its key; other partitions are not held back meanwhile.
    func lateCommitKeepsKeyOrder(_ subject: any OutboxStoreUnderTest) async throws {
        guard let subject = subject as? any OutboxStoreUnderTestWithOpenTransactions else {
            throw ConformanceFailure("[\(harness.name)] lateCommitKeepsKeyOrder needs a store under test that can hold a transaction open "
                + "(OutboxStoreUnderTestWithOpenTransactions); single-writer stores run Check.forSingleWriterStores.")
        }
        let recorder = RecordingPublisher()
        let running = relay(subject, recorder, .forTesting(pollInterval: .milliseconds(100)))
        // Two keys in different partitions.
        let partitionCount = try await subject.store.status(now: Date()).partitionCount
        let keyA = "account-a"
        let partitionA = OutboxPartitioning.partition(key: keyA, id: UUID(), partitionCount: partitionCount)
        let keyB = (0..<1000).map { "account-b\($0)" }.first {
            OutboxPartitioning.partition(key: $0, id: UUID(), partitionCount: partitionCount) != partitionA
        }!
        let a1 = OutboxMessage(topic: "t", key: keyA, text: "A1: the slow transaction")
        let a2 = OutboxMessage(topic: "t", key: keyA, text: "A2: committed (or waiting) while A1's transaction is open")
        let b1 = OutboxMessage(topic: "t", key: keyB, text: "B1: another partition")

        // T1 enqueues A1 and stays open.
        let t1Enqueued = Atomic<Bool>(false)
        let t1MayCommit = Atomic<Bool>(false)
        let t1 = Task {
            try await subject.enqueueHeldOpen([a1], enqueued: { t1Enqueued.store(true, ordering: .releasing) },
                                              mayCommit: { t1MayCommit.load(ordering: .acquiring) })
        }
        while !t1Enqueued.load(ordering: .acquiring) { try await Task.sleep(for: .milliseconds(10)) }
        // T2 (A2) and T3 (B1) while T1 is open: both get larger sequences than A1. Where writers to
        // one partition wait for each other, T2 commits only after T1.
        let t2 = Task { try await subject.enqueueCommitted([a2]) }
        if !subject.writersToOnePartitionWait { try await t2.value }
        try await subject.enqueueCommitted([b1])
        try await waitUntil("B1, in another partition, is published while T1 is open") {
            recorder.deliveries.contains { $0.message.id == b1.id }
        }
        try await Task.sleep(for: .milliseconds(500))
        try expect(!recorder.deliveries.contains { $0.message.id == a2.id }, "A2 must wait for A1's transaction")
        t1MayCommit.store(true, ordering: .releasing)
        try await t1.value
        try await t2.value
        try await waitUntil("A1 and A2 are published") { recorder.deliveryCount >= 3 }
        try await running.stop()

        let order = recorder.deliveries.map(\.message.id)
        let sequenceOf = Dictionary(recorder.deliveries.map { ($0.message.id, $0.sequence) }, uniquingKeysWith: { first, _ in first })
        try expect(sequenceOf[a1.id]! < sequenceOf[b1.id]!, "A1 has the smaller sequence, though B1 was published first")
        try expect(order.firstIndex(of: b1.id)! < order.firstIndex(of: a1.id)!, "the late commit did not hold back another partition")
        try expect(order.firstIndex(of: a1.id)! < order.firstIndex(of: a2.id)!, "A1 is published before A2, the later message of its key")
        try expect(Set(order).count == 3 && order.count == 3, "each message published once, got \(order.count) deliveries")
    }
}

extension OutboxStoreConformance {
    /// Claims take a partition only when no enqueueing transaction on it is open. Writers whose
    /// transactions keep overlapping on one partition must not hold it back for as long as the
    /// load lasts: 4 writers, each holding a transaction 200 ms, staggered, for 10 s; every
    /// message of that partition is published within 1 s of its commit, during the load.
    func overlappingWritersDoNotStarveAPartition(_ subject: any OutboxStoreUnderTest) async throws {
        guard let subject = subject as? any OutboxStoreUnderTestWithOpenTransactions else {
            throw ConformanceFailure("[\(harness.name)] overlappingWritersDoNotStarveAPartition needs a store under test that can hold a transaction open "
                + "(OutboxStoreUnderTestWithOpenTransactions); single-writer stores run Check.forSingleWriterStores.")
        }
        let published = InstantLog(), committed = InstantLog()
        let publisher = TimestampingPublisher { records in
            let now = ContinuousClock.now
            for record in records { published.note(record.message.id, at: now) }
        }
        let running = relay(subject, publisher, .forTesting(pollInterval: .milliseconds(100)))
        try await waitUntil("the relay holds its partitions") {
            try await subject.store.status(now: Date()).relays.first.map { !$0.partitions.isEmpty } ?? false
        }
        let loadEnds = ContinuousClock.now + .seconds(10)
        try await withThrowingTaskGroup(of: Void.self) { writers in
            for writer in 0..<4 {
                writers.addTask {
                    try await Task.sleep(for: .milliseconds(50 * writer))  // staggered: one always open
                    var index = 0
                    while ContinuousClock.now < loadEnds {
                        let message = OutboxMessage(topic: "t", key: "hot", text: "writer \(writer) #\(index)")
                        index += 1
                        let opened = ContinuousClock.now
                        try await subject.enqueueHeldOpen([message], enqueued: {}, mayCommit: { ContinuousClock.now - opened >= .milliseconds(200) })
                        committed.note(message.id, at: ContinuousClock.now)
                    }
                }
            }
            try await writers.waitForAll()
        }
        let total = committed.entries.count
        try await waitUntil("every committed message is published") { published.entries.count >= total }
        try await running.stop()
        let (commits, publishes) = (committed.entries, published.entries)
        let delays = commits.compactMap { id, commit in publishes[id].map { $0 - commit } }
        let worst = delays.max() ?? .zero
        let duringLoad = publishes.values.filter { $0 < loadEnds }.count
        try expect(duringLoad > total / 2, "the hot partition's messages must be published during the load: \(duringLoad) of \(total) were")
        try expect(worst <= .seconds(1), "a message of the hot partition waited \(worst) after its commit (\(total) messages); the bound is 1 s")
    }
}

/// The first instant noted for each message.
final class InstantLog: Sendable {
    private let log = Mutex<[UUID: ContinuousClock.Instant]>([:])

    func note(_ id: UUID, at instant: ContinuousClock.Instant) {
        log.withLock { if $0[id] == nil { $0[id] = instant } }
    }

    var entries: [UUID: ContinuousClock.Instant] { log.withLock { $0 } }
}

/// Delivers everything and tells `onPublish` when, for latency checks.
final class TimestampingPublisher: OutboxPublisher, Sendable {
    private let onPublish: @Sendable ([OutboxRecord]) -> Void

    init(onPublish: @escaping @Sendable ([OutboxRecord]) -> Void) { self.onPublish = onPublish }

    func publish(_ records: [OutboxRecord]) async throws -> [OutboxPublishOutcome] {
        onPublish(records)
        return Array(repeating: .delivered, count: records.count)
    }
}
