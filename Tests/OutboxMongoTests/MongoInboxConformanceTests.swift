import Foundation
import Outbox
import OutboxMongo
import OutboxTestSupport
import OutboxTesting
import Synchronization
import Testing

@Suite("MongoDB inbox conformance", .serialized, .enabled(if: TestServer.mongo.shouldRun, "set OUTBOX_MONGO_URL (scripts/test.sh does)"))
struct MongoInboxConformanceTests {
    @Test(arguments: OutboxInboxConformance<MongoInboxHarness>.Check.allCases)
    func conformance(_ check: OutboxInboxConformance<MongoInboxHarness>.Check) async throws {
        try await OutboxInboxConformance(harness: MongoInboxHarness()).run(check)
    }
}

/// Each check gets its own collection prefix with a `<prefix>_projection` collection the handler writes to.
final class MongoInboxHarness: OutboxInboxStoreHarness {
    private let running = StoreSubjects<MongoStoreUnderTest>()
    private let sequence = ProjectionSequence()

    var name: String { "MongoDB" }

    func makeStore() async throws -> MongoOutboxStore {
        let subject = try await MongoStoreUnderTest(partitionCount: 4)
        try await subject.mongo.migrateInbox()
        try await subject.mongo.migrateInbox()
        try await subject.client.collection("\(subject.prefix)_projection").createIndexes([("seq", ["seq": 1], false)])
        running.keep(subject, for: subject.mongo)
        return subject.mongo
    }

    private func subject(_ store: MongoOutboxStore) -> MongoStoreUnderTest {
        running.subject(for: store)
    }

    func projecting(into store: MongoOutboxStore, after: @escaping @Sendable (OutboxInboxMessage) throws -> Void) -> MongoOutboxStore.Handler {
        let projection = subject(store).client.collection("\(subject(store).prefix)_projection")
        return { [sequence] message, session in
            let seq = sequence.next()
            try await projection.insertOne(["seq": .int64(seq), "row": .string(String(decoding: message.payload, as: UTF8.self))], session: session)
            try after(message)
        }
    }

    func projection(of store: MongoOutboxStore) async throws -> [String] {
        let subject = subject(store)
        return try await subject.client.collection("\(subject.prefix)_projection").find([:], sort: ["seq": 1]).map { $0["row"]?.stringValue ?? "" }
    }

    func close(_ store: MongoOutboxStore) async throws {
        guard let subject = running.take(for: store) else { return }
        for collection in ["projection", "inbox", "inbox_dead", "inbox_meta"] {
            _ = try? await subject.client.runCommand(["drop": .string("\(subject.prefix)_\(collection)")])
        }
        try await subject.close()
    }
}

/// Numbers the projection's rows in the order handlers wrote them.
final class ProjectionSequence: Sendable {
    private let value = Mutex<Int64>(0)

    func next() -> Int64 {
        value.withLock { value in
            value += 1
            return value
        }
    }
}
