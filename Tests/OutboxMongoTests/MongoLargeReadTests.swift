import Foundation
import Outbox
@testable import OutboxMongo
import OutboxTestSupport
import OutboxTesting
import Testing

/// A real mongod answers a `find` with at most 101 documents in its first batch: every read the
/// store makes must follow the cursor (or say its limit), or leases, retries and status are cut short.
@Suite("MongoDB large reads", .serialized, .enabled(if: TestServer.mongo.shouldRun, "set OUTBOX_MONGO_URL (scripts/test.sh does)"), .closesAtEnd)
struct MongoLargeReadTests {
    @Test func twoHundredFiftySixPartitionsAndManyRetriesAreReadWhole() async throws {
        // Batches of 40, so every read that is not followed to the cursor's end is cut short here
        // as mongod's first batch of 101 cuts it there.
        var configuration = try TestServer.requireConfiguration()
        configuration.batchSize = 40
        let subject = try await MongoStoreUnderTest(partitionCount: 256, configuration: configuration)
        atEnd { try? await subject.close() }
        let grant = try await subject.store.heartbeat(OutboxHeartbeat(relayID: "lone", leaseDuration: .seconds(30)))
        #expect(grant.owned.count == 256 && grant.partitionCount == 256, "a lone relay owns all 256 partitions, owns \(grant.owned.count)")
        // 150 keys, each with a message waiting for a retry and a later one that must stay held back.
        let first = (0..<150).map { OutboxMessage(topic: "t", key: "k\($0)", text: "first \($0)") }
        let second = (0..<150).map { OutboxMessage(topic: "t", key: "k\($0)", text: "second \($0)") }
        try await subject.enqueueCommitted(first)
        try await subject.enqueueCommitted(second)
        let claimed = try await subject.store.claim(partitions: grant.owned.sorted(), limit: 150, now: Date())
        #expect(claimed.count == 150)
        let later = Date().addingTimeInterval(600)
        let result = try await subject.store.acknowledge(OutboxAcknowledgement(relayID: "lone", retries: claimed.map {
            .init(sequence: $0.sequence, partition: $0.partition, availableAt: later, error: "timeout")
        }))
        #expect(result.applied == 150, "every retry applied (the owned-partitions read is whole), applied \(result.applied)")
        let held = try await subject.store.claim(partitions: grant.owned.sorted(), limit: 500, now: Date())
        #expect(held.isEmpty, "all 150 later messages are held back behind their retrying predecessors, \(held.count) were not")
        let status = try await subject.store.status(now: Date())
        #expect(status.pending == 300 && status.retrying == 150 && status.partitionCount == 256)
        #expect(status.relays.first?.partitions.count == 256)
    }

    /// More concurrent transactions than the client's pool holds (libmongoc's default is 100)
    /// neither deadlock nor stall a relay that shares the client.
    @Test func moreTransactionsThanThePoolHoldsDoNotDeadlock() async throws {
        let subject = try await MongoStoreUnderTest(partitionCount: 8)
        let recorder = RecordingPublisher()
        let relay = RunningRelay(OutboxRelay(store: subject.store, publisher: recorder, configuration: .forTesting(), logger: subject.logger))
        let client = subject.client
        let store = subject.mongo
        let orders = subject.orders
        // Unstructured on purpose: on a deadlock the test must fail, not hang with it.
        let work = Task {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<150 {
                    group.addTask {
                        try await client.withTransaction { session in
                            try await orders.insertOne(["_id": .string("order-\(index)")], session: session)
                            // Hold the transaction a moment, so all 150 are open together.
                            try await Task.sleep(for: .milliseconds(200))
                            try await store.enqueue([OutboxMessage(topic: "t", key: "k\(index % 10)", text: "\(index)")], in: session)
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
        let finished = (try? await waitUntil("150 transactions commit", timeout: .seconds(60)) { recorder.deliveryCount >= 150 }) != nil
        #expect(finished, "150 concurrent transactions and a relay on one client deadlocked: \(recorder.deliveryCount) of 150 published")
        guard finished else { return }  // leave the stuck client alone
        try await work.value
        try await relay.stop()
        try await subject.close()
        #expect(Set(recorder.deliveries.map(\.message.id)).count == 150)
    }
}
