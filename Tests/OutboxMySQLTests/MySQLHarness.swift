import Foundation
import Logging
import Outbox
import OutboxMySQL
import OutboxTestSupport
import OutboxTesting

extension TestServer {
    /// The suites' server, parsed; fails naming the variable and the script when it is missing.
    static func requireConfiguration() throws -> MySQLConfiguration { try MySQLConnectionURL(TestServer.mariadb.requireURL()).configuration }
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
        let configuration = try configuration ?? TestServer.requireConfiguration()
        logger = OutboxStoreConformance.defaultLogger
        // One pool for the application and the store, as the store is meant to be used; its
        // sessions keep the server's REPEATABLE READ, so the store's transactions set their own level.
        application = MySQLConnectionPool(configuration: configuration, maximumConnections: 16)
        self.prefix = prefix
        mysql = try MySQLOutboxStore(
            pool: application,
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
            try await self.mysql.enqueue(messages, in: connection)
        }
    }

    /// Writers to one partition share its guard row's lock: they commit side by side.
    var writersToOnePartitionWait: Bool { false }

    func enqueueHeldOpen(_ messages: [OutboxMessage], enqueued: @Sendable () -> Void, mayCommit: @Sendable () -> Bool) async throws {
        try await application.withTransaction { connection in
            try await connection.query("INSERT INTO \(self.ordersTable) (note) VALUES (?)", ["order"])
            try await self.mysql.enqueue(messages, in: connection)
            enqueued()
            while !mayCommit() { try await Task.sleep(for: .milliseconds(10)) }
        }
    }

    func enqueueRolledBack(_ messages: [OutboxMessage]) async throws {
        struct Rollback: Error {}
        do {
            try await application.withTransaction { connection in
                try await connection.query("INSERT INTO \(self.ordersTable) (note) VALUES (?)", ["order"])
                try await self.mysql.enqueue(messages, in: connection)
                throw Rollback()
            }
        } catch is Rollback {}
    }

    func close() async throws {
        _ = try? await application.query("DROP TABLE IF EXISTS \(ordersTable)")
        try? await mysql.dropSchema()
        await application.close()
    }
}
