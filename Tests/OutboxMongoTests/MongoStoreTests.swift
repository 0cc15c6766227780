import Foundation
import Outbox
@testable import OutboxMongo
import OutboxTestSupport
import OutboxTesting
import Testing

@Suite("MongoDB store", .serialized, .enabled(if: TestServer.mongo.shouldRun, "set OUTBOX_MONGO_URL (scripts/test.sh does)"), .closesAtEnd)
struct MongoStoreTests {
    /// Hostile text in every field and every byte value in the payload come back byte-exact, and
    /// the application's own documents take the same text.
    @Test func hostileTextIsStoredByteExact() async throws {
        let subject = try await MongoStoreUnderTest(partitionCount: 4)
        atEnd { try? await subject.close() }
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
        atEnd { try? await subject.close() }
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
        let configuration = try MongoConnectionURL("mongodb://app:s3cr3t@db1:27017,db2:27017/shop?replicaSet=rs0&tls=true").configuration
        #expect(configuration.database == "shop")
        #expect(!configuration.description.contains("s3cr3t"))
        for bad in ["", "mongodb://", "mysql://u@h/db", "mongodb:///db", "mongodb://h/a.b"] {
            #expect(throws: OutboxError.self, "\(bad)") { _ = try MongoConnectionURL(bad).configuration }
        }
    }

    @Test func unreachableServerIsNamed() async throws {
        let client = try MongoClient(configuration: MongoConnectionURL("mongodb://127.0.0.1:1/outbox?serverSelectionTimeoutMS=500").configuration)
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
        let client = try MongoClient(configuration: try TestServer.requireConfiguration())
        for prefix in ["x.$cmd", "", "a b", "1abc", "{\"$gt\":1}"] {
            #expect(throws: OutboxError.self) { _ = try MongoOutboxStore(client: client, configuration: .init(tablePrefix: prefix), logger: .init(label: "test")) }
        }
    }

    /// The longest prefix `migrate` accepts (40 characters) works end to end: collections,
    /// indexes, the change stream, enqueue, claim and acknowledgement.
    @Test func theLongestAcceptedPrefixWorksEndToEnd() async throws {
        let prefix = "p" + String(UUID().uuidString.lowercased().filter(\.isLetter).prefix(6)) + String(repeating: "x", count: 40)
        let subject = try await MongoStoreUnderTest(partitionCount: 4, prefix: String(prefix.prefix(40)))
        atEnd { try? await subject.close() }
        let recorder = RecordingPublisher()
        let relay = RunningRelay(OutboxRelay(store: subject.store, publisher: recorder, configuration: .forTesting(), logger: subject.logger))
        let messages = (0..<20).map { OutboxMessage(topic: "t", key: "k\($0 % 3)", text: "\($0)") }
        try await subject.enqueueCommitted(messages)
        try await waitUntil("the messages are published") { recorder.deliveryCount >= messages.count }
        try await relay.stop()
        #expect(Set(recorder.deliveries.map(\.message.id)) == Set(messages.map(\.id)))
    }
}
