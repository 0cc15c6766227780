import Foundation
import Logging
import Outbox
import OutboxMySQL
import OutboxTesting

/// The server the MySQL/MariaDB suites use: `OUTBOX_MYSQL_URL`, set by scripts/test.sh after it
/// started MariaDB. With `OUTBOX_REQUIRE_SERVERS=1` a missing URL fails the suite instead of skipping it.
enum MySQLTestServer {
    static var url: String? { ProcessInfo.processInfo.environment["OUTBOX_MYSQL_URL"].flatMap { $0.isEmpty ? nil : $0 } }
    static var isRequired: Bool { ProcessInfo.processInfo.environment["OUTBOX_REQUIRE_SERVERS"] == "1" }
    /// Run the suite when a server is configured, or when one is required (it then fails loudly).
    static var shouldRun: Bool { url != nil || isRequired }

    static func requireConfiguration() throws -> MySQLConfiguration {
        guard let url else {
            throw ConformanceFailure("OUTBOX_MYSQL_URL is not set and OUTBOX_REQUIRE_SERVERS=1: start MariaDB with scripts/start-mariadb.sh (scripts/test.sh does).")
        }
        return try MySQLConfiguration(url: url)
    }
}

/// Each check gets its own table prefix in the test database, an application pool and the store.
struct MySQLHarness: OutboxStoreHarness {
    var name: String { "MySQL/MariaDB" }
    /// Adaptive polling: another process's commit is seen within the longest poll interval.
    var wakeUpBound: Duration { .seconds(2) }

    func makeStore() async throws -> any OutboxStoreUnderTest {
        try await MySQLStoreUnderTest(partitionCount: 16)
    }
}

final class MySQLStoreUnderTest: OutboxStoreUnderTestWithOpenTransactions {
    let application: MySQLConnectionPool
    let mysql: MySQLOutboxStore
    let prefix: String
    let logger: Logger
    var ordersTable: String { "`\(prefix)_orders`" }

    init(partitionCount: Int, prefix: String = "t_\(UUID().uuidString.prefix(8).lowercased())",
         configuration: MySQLConfiguration? = nil, messageLimits: OutboxMessageLimits = OutboxStoreConformance.messageLimits) async throws {
        let configuration = try configuration ?? MySQLTestServer.requireConfiguration()
        logger = OutboxStoreConformance.defaultLogger
        application = MySQLConnectionPool(configuration: configuration, maximumConnections: 8)
        self.prefix = prefix
        mysql = try MySQLOutboxStore(
            connection: configuration,
            configuration: .init(tablePrefix: prefix, partitionCount: partitionCount, messageLimits: messageLimits,
                                 maximumPollInterval: .milliseconds(500)),
            logger: logger)
        try await mysql.migrate()
        try await application.query("CREATE TABLE `\(prefix)_orders` (id BIGINT AUTO_INCREMENT PRIMARY KEY, note VARCHAR(100) NOT NULL) ENGINE=InnoDB")
    }

    var store: any OutboxStore { mysql }

    func enqueueCommitted(_ messages: [OutboxMessage]) async throws {
        try await application.withTransaction { connection in
            try await connection.query("INSERT INTO \(self.ordersTable) (note) VALUES (?)", ["order"])
            try await self.mysql.enqueue(messages, on: connection)
        }
    }

    /// Writers to one partition share its guard row's lock: they commit side by side.
    var writersToOnePartitionWait: Bool { false }

    func enqueueHeldOpen(_ messages: [OutboxMessage], enqueued: @Sendable () -> Void, mayCommit: @Sendable () -> Bool) async throws {
        try await application.withTransaction { connection in
            try await connection.query("INSERT INTO \(self.ordersTable) (note) VALUES (?)", ["order"])
            try await self.mysql.enqueue(messages, on: connection)
            enqueued()
            while !mayCommit() { try await Task.sleep(for: .milliseconds(10)) }
        }
    }

    func enqueueRolledBack(_ messages: [OutboxMessage]) async throws {
        struct Rollback: Error {}
        do {
            try await application.withTransaction { connection in
                try await connection.query("INSERT INTO \(self.ordersTable) (note) VALUES (?)", ["order"])
                try await self.mysql.enqueue(messages, on: connection)
                throw Rollback()
            }
        } catch is Rollback {}
    }

    func close() async throws {
        for table in ["orders", "messages", "leases", "relays", "commit_guard", "migrations"] {
            _ = try? await application.query("DROP TABLE IF EXISTS `\(prefix)_\(table)`")
        }
        await application.close()
        await mysql.close()
    }
}
