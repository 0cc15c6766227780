import Foundation
import Outbox
@testable import OutboxMongo
import OutboxTesting
import Synchronization
import Testing

@Suite("MongoDB store", .serialized, .enabled(if: MongoTestServer.shouldRun, "set OUTBOX_MONGO_URL (scripts/test.sh does)"))
struct MongoStoreTests {
    /// Two transactions enqueueing into one partition cannot both be open: the second conflicts
    /// and runs again after the first commits, so a key's messages get counters in commit order.
    /// Other partitions are not held back meanwhile.
    @Test func openTransactionHoldsBackOnlyItsPartition() async throws {
        let subject = try await MongoStoreUnderTest(partitionCount: 16)
        defer { Task { try? await subject.close() } }
        let store = subject.mongo
        let recorder = RecordingPublisher()
        let running = RunningRelay(OutboxRelay(store: store, publisher: recorder, configuration: .forTesting(pollInterval: .milliseconds(100)),
                                               logger: subject.logger))
        let keyA = "account-a"
        let keyB = (0..<1000).map { "account-b\($0)" }.first {
            OutboxPartitioning.partition(key: $0, id: UUID(), partitionCount: 16) != OutboxPartitioning.partition(key: keyA, id: UUID(), partitionCount: 16)
        }!
        let a1 = OutboxMessage(topic: "t", key: keyA, text: "A1: the slow transaction")
        let a2 = OutboxMessage(topic: "t", key: keyA, text: "A2: started later, must come after A1")
        let b1 = OutboxMessage(topic: "t", key: keyB, text: "B1: another partition")

        let t1Enqueued = Flag()
        let t1MayCommit = Flag()
        let t1 = Task {
            try await subject.client.withTransaction { session in
                try await store.enqueue([a1], in: session)
                t1Enqueued.set()
                while !t1MayCommit.isSet { try await Task.sleep(for: .milliseconds(10)) }
            }
        }
        while !t1Enqueued.isSet { try await Task.sleep(for: .milliseconds(10)) }
        let t2 = Task { try await subject.enqueueCommitted([a2]) }
        try await subject.enqueueCommitted([b1])
        try await waitUntil("B1, in another partition, is published while T1 is open") {
            recorder.deliveries.contains { $0.message.id == b1.id }
        }
        try await Task.sleep(for: .milliseconds(500))
        #expect(!recorder.deliveries.contains { $0.message.id == a2.id }, "A2 must wait for A1's transaction")
        t1MayCommit.set()
        try await t1.value
        try await t2.value
        try await waitUntil("A1 and A2 are published") { recorder.deliveryCount >= 3 }
        try await running.stop()
        let order = recorder.deliveries.map(\.message.id)
        #expect(order.firstIndex(of: a1.id)! < order.firstIndex(of: a2.id)!, "A1 is published before A2")
        #expect(Set(order).count == 3 && order.count == 3)
    }

    /// Hostile text in every field and every byte value in the payload come back byte-exact, and
    /// the application's own documents take the same text.
    @Test func hostileTextIsStoredByteExact() async throws {
        let subject = try await MongoStoreUnderTest(partitionCount: 4)
        defer { Task { try? await subject.close() } }
        let hostile = "'; DROP TABLE users; -- {\"$where\": \"sleep(1000)\"} $gt . 😀𝄞 \u{1F9D1}\u{200D}\u{1F4BB}"
        let message = OutboxMessage(topic: "orders-😀'\"$", key: hostile, type: hostile, payload: Array(0...255) + Array(hostile.utf8),
                                    headers: [OutboxHeader(hostile, hostile), OutboxHeader("$set", "{\"$gt\": 1}")])
        try await subject.client.withTransaction { session in
            try await subject.orders.insertOne(["_id": .string(hostile), "note": .string(hostile)], session: session)
            try await subject.mongo.enqueue([message], in: session)
        }
        let records = try await subject.mongo.claim(partitions: Array(0..<4), limit: 10, now: Date())
        try #require(records.count == 1)
        let stored = records[0].message
        #expect(stored.id == message.id && stored.topic == message.topic && stored.key == hostile && stored.type == hostile)
        #expect(stored.payload == message.payload)
        #expect(stored.headers.filter { $0.name != "traceparent" } == message.headers)
        let order = try await subject.orders.find(["_id": .string(hostile)])
        #expect(order.first?["note"]?.stringValue == hostile)
    }

    /// A payload over MongoDB's 16 MB document limit is refused with one sentence, and nothing of
    /// the application's transaction is half-written.
    @Test func oversizePayloadIsRefused() async throws {
        let subject = try await MongoStoreUnderTest(
            partitionCount: 4, messageLimits: OutboxMessageLimits(maximumPayloadBytes: 32 * 1024 * 1024))
        defer { Task { try? await subject.close() } }
        let huge = OutboxMessage(topic: "t", key: "big", payload: Array(repeating: 1, count: 17 * 1024 * 1024))
        do {
            try await subject.enqueueCommitted([huge])
            Issue.record("a 17 MB message was accepted")
        } catch let error as OutboxError {
            #expect(error.code == .invalidMessage, "\(String(reflecting: error))")
        }
        #expect(try await subject.orders.find([:]).isEmpty, "the aborted transaction left no order behind")
        #expect(try await subject.mongo.status(now: Date()).pending == 0)
    }

    @Test func urlsAreParsedWithoutLeakingThePassword() throws {
        let configuration = try MongoConfiguration(url: "mongodb://app:s3cr3t@db1:27017,db2:27017/shop?replicaSet=rs0&tls=true")
        #expect(configuration.database == "shop")
        #expect(!configuration.description.contains("s3cr3t"))
        for bad in ["", "mongodb://", "mysql://u@h/db", "mongodb:///db", "mongodb://h/a.b"] {
            #expect(throws: OutboxError.self, "\(bad)") { _ = try MongoConfiguration(url: bad) }
        }
    }

    @Test func unreachableServerIsNamed() async throws {
        let client = try MongoClient(configuration: MongoConfiguration(url: "mongodb://127.0.0.1:1/outbox?serverSelectionTimeoutMS=500"))
        let store = try MongoOutboxStore(client: client, logger: .init(label: "test"))
        do {
            try await store.migrate()
            Issue.record("migrate against a closed port succeeded")
        } catch let error as OutboxError {
            #expect(error.code == .storeUnavailable)
            #expect(error.description.contains("could not be reached"), "\(error)")
        }
    }

    @Test func hostilePrefixIsRefused() throws {
        let client = try MongoClient(configuration: try MongoTestServer.requireConfiguration())
        for prefix in ["x.$cmd", "", "a b", "1abc", "{\"$gt\":1}"] {
            #expect(throws: OutboxError.self) { _ = try MongoOutboxStore(client: client, configuration: .init(collectionPrefix: prefix), logger: .init(label: "test")) }
        }
    }
}

final class Flag: Sendable {
    private let value = Mutex(false)
    func set() { value.withLock { $0 = true } }
    var isSet: Bool { value.withLock { $0 } }
}
