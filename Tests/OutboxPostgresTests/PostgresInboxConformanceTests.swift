import Foundation
import Outbox
import OutboxPostgres
import OutboxTestSupport
import OutboxTesting
import PostgresNIO
import Testing

@Suite("PostgreSQL inbox conformance", .enabled(if: TestServer.postgres.shouldRun, "set OUTBOX_POSTGRES_URL (scripts/test.sh does)"))
struct PostgresInboxConformanceTests {
    @Test(arguments: OutboxInboxConformance<PostgresInboxHarness>.Check.allCases)
    func conformance(_ check: OutboxInboxConformance<PostgresInboxHarness>.Check) async throws {
        try await OutboxInboxConformance(harness: PostgresInboxHarness()).run(check)
    }
}

/// Each check gets its own schema with a `projection` table the handler writes to.
final class PostgresInboxHarness: OutboxInboxStoreHarness {
    private let running = StoreSubjects<PostgresStoreUnderTest>()

    var name: String { "PostgreSQL" }

    func makeStore() async throws -> PostgresOutboxStore {
        let subject = try await PostgresStoreUnderTest(partitionCount: 4)
        try await subject.postgres.migrateInbox()
        try await subject.postgres.migrateInbox()
        try await subject.client.query(PostgresQuery(unsafeSQL: "CREATE TABLE \(subject.schema).projection (seq BIGSERIAL PRIMARY KEY, row TEXT NOT NULL)"),
                                       logger: subject.logger)
        running.keep(subject, for: subject.postgres)
        return subject.postgres
    }

    private func subject(_ store: PostgresOutboxStore) -> PostgresStoreUnderTest {
        running.subject(for: store)
    }

    func projecting(into store: PostgresOutboxStore, after: @escaping @Sendable (OutboxInboxMessage) throws -> Void) -> PostgresOutboxStore.Handler {
        let schema = subject(store).schema
        return { message, connection in
            let row = String(decoding: message.payload, as: UTF8.self)
            try await connection.query("INSERT INTO \(unescaped: schema).projection (row) VALUES (\(row))", logger: connection.logger)
            try after(message)
        }
    }

    func projection(of store: PostgresOutboxStore) async throws -> [String] {
        let subject = subject(store)
        let rows = try await subject.client.query("SELECT row FROM \(unescaped: subject.schema).projection ORDER BY seq", logger: subject.logger)
        var result: [String] = []
        for try await row in rows.decode(String.self) { result.append(row) }
        return result
    }

    func close(_ store: PostgresOutboxStore) async throws {
        let subject = running.take(for: store)
        try await subject?.close()
    }
}
