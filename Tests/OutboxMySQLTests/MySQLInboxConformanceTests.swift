import Foundation
import Outbox
import OutboxMySQL
import OutboxTestSupport
import OutboxTesting
import Testing

@Suite("MySQL/MariaDB inbox conformance", .enabled(if: TestServer.mariadb.shouldRun, "set OUTBOX_MYSQL_URL (scripts/test.sh does)"))
struct MySQLInboxConformanceTests {
    @Test(arguments: OutboxInboxConformance<MySQLInboxHarness>.Check.allCases)
    func conformance(_ check: OutboxInboxConformance<MySQLInboxHarness>.Check) async throws {
        try await OutboxInboxConformance(harness: MySQLInboxHarness()).run(check)
    }
}

/// Each check gets its own table prefix with a `<prefix>_projection` table the handler writes to.
final class MySQLInboxHarness: OutboxInboxStoreHarness {
    private let running = StoreSubjects<MySQLStoreUnderTest>()

    var name: String { "MySQL/MariaDB" }

    func makeStore() async throws -> MySQLOutboxStore {
        let subject = try await MySQLStoreUnderTest(partitionCount: 4)
        try await subject.mysql.migrateInbox()
        try await subject.mysql.migrateInbox()
        try await subject.application.query(
            "CREATE TABLE `\(subject.prefix)_projection` (seq BIGINT AUTO_INCREMENT PRIMARY KEY, row_text VARCHAR(200) NOT NULL) ENGINE=InnoDB")
        running.keep(subject, for: subject.mysql)
        return subject.mysql
    }

    private func subject(_ store: MySQLOutboxStore) -> MySQLStoreUnderTest {
        running.subject(for: store)
    }

    func projecting(into store: MySQLOutboxStore, after: @escaping @Sendable (OutboxInboxMessage) throws -> Void) -> MySQLOutboxStore.Handler {
        let table = "`\(subject(store).prefix)_projection`"
        return { message, connection in
            try await connection.query("INSERT INTO \(table) (row_text) VALUES (?)", [.text(String(decoding: message.payload, as: UTF8.self))])
            try after(message)
        }
    }

    func projection(of store: MySQLOutboxStore) async throws -> [String] {
        let subject = subject(store)
        return try await subject.application.query("SELECT row_text FROM `\(subject.prefix)_projection` ORDER BY seq").rows.map { $0[0].string ?? "" }
    }

    func close(_ store: MySQLOutboxStore) async throws {
        guard let subject = running.take(for: store) else { return }
        // The inbox's tables go with the outbox's (`dropSchema`); the projection is the test's own.
        _ = try? await subject.application.query("DROP TABLE IF EXISTS `\(subject.prefix)_projection`")
        try await subject.close()
    }
}
