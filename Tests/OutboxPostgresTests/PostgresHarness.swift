import Foundation
import Logging
import Outbox
import OutboxPostgres
import OutboxTestSupport
import OutboxTesting
import PostgresNIO
import ServiceLifecycle
import Synchronization

extension TestServer {
    /// The suites' server, parsed; fails naming the variable and the script when it is missing.
    static func requireURL() throws -> PostgresConnectionURL { try PostgresConnectionURL(TestServer.postgres.requireURL()) }
}

/// Each check gets its own schema on the test server, with the store, a client and the listener running.
struct PostgresHarness: OutboxStoreHarness {
    var name: String { "PostgreSQL" }
    var wakeUpBound: Duration { .seconds(2) }

    func makeStore() async throws -> any OutboxStoreUnderTest {
        try await PostgresStoreUnderTest(partitionCount: 16)
    }
}

final class PostgresStoreUnderTest: OutboxStoreUnderTestWithOpenTransactions {
    let client: PostgresClient
    let postgres: PostgresOutboxStore
    let schema: String
    let logger: Logger
    private let group: ServiceGroup
    private let running: Task<Void, any Error>

    init(partitionCount: Int, schema: String = "t_\(UUID().uuidString.prefix(8).lowercased())", tablePrefix: String = "outbox",
         url: PostgresConnectionURL? = nil, logger: Logger = OutboxStoreConformance.defaultLogger) async throws {
        let url = try url ?? TestServer.requireURL()
        self.logger = logger
        client = PostgresClient(configuration: url.clientConfiguration, backgroundLogger: logger)
        self.schema = schema
        postgres = try PostgresOutboxStore(
            client: client,
            configuration: .init(schema: schema, tablePrefix: tablePrefix, partitionCount: partitionCount,
                                 messageLimits: OutboxStoreConformance.messageLimits,
                                 reconnectDelay: .milliseconds(200)),
            logger: logger)
        let group = ServiceGroup(services: [client, postgres], logger: logger)
        self.group = group
        running = Task { try await group.run() }
        try await postgres.migrate()
        // Until the listener is connected a commit's notification would be missed and the relay
        // would find the message only at its next poll.
        try await waitUntil("the outbox listener is connected", timeout: .seconds(30)) { self.postgres.isWakeUpConnected }
        try await client.query(PostgresQuery(unsafeSQL: "CREATE TABLE \(schema).orders (id UUID PRIMARY KEY, note TEXT NOT NULL)"), logger: logger)
    }

    var store: any OutboxStore { postgres }

    /// Through the store's own transaction (one round trip per enqueue); the held-open and
    /// rolled-back enqueues below go through the client's, so the suite runs both paths.
    func enqueueCommitted(_ messages: [OutboxMessage]) async throws {
        do {
            try await postgres.withTransaction(logger: logger) { transaction in
                try await transaction.connection.query(PostgresQuery(unsafeSQL: "INSERT INTO \(self.schema).orders (id, note) VALUES (gen_random_uuid(), 'order')"),
                                                       logger: logger)
                try await transaction.enqueue(messages)
            }
        } catch let error as PostgresTransactionError {
            // postgres-nio wraps what the body threw; the checks look at the outbox's own error.
            throw error.closureError ?? error
        }
    }

    /// Writers to one partition share its advisory lock: they commit side by side.
    var writersToOnePartitionWait: Bool { false }

    func enqueueHeldOpen(_ messages: [OutboxMessage], enqueued: @Sendable () -> Void, mayCommit: @Sendable () -> Bool) async throws {
        try await client.withTransaction(logger: logger) { connection in
            try await connection.query(PostgresQuery(unsafeSQL: "INSERT INTO \(self.schema).orders (id, note) VALUES (gen_random_uuid(), 'order')"), logger: logger)
            try await self.postgres.enqueue(messages, in: connection)
            enqueued()
            while !mayCommit() { try await Task.sleep(for: .milliseconds(10)) }
        }
    }

    func enqueueRolledBack(_ messages: [OutboxMessage]) async throws {
        struct Rollback: Error {}
        do {
            try await client.withTransaction(logger: logger) { connection in
                try await connection.query(PostgresQuery(unsafeSQL: "INSERT INTO \(self.schema).orders (id, note) VALUES (gen_random_uuid(), 'order')"), logger: logger)
                try await self.postgres.enqueue(messages, in: connection)
                throw Rollback()
            }
        } catch let error as PostgresTransactionError where error.closureError is Rollback {}
    }

    func close() async throws {
        _ = try? await client.query(PostgresQuery(unsafeSQL: "DROP SCHEMA \(schema) CASCADE"), logger: logger)
        await group.triggerGracefulShutdown()
        try? await running.value
    }
}
