import Foundation
import GRDB
import Logging
import Outbox
import OutboxMongo
import OutboxMySQL
import OutboxPostgres
import OutboxSQLite
import PostgresNIO
import ServiceLifecycle

/// The store a bench run writes to, with the application-side enqueue of its kind.
struct BenchStore: Sendable {
    let name: String
    let store: any OutboxStore
    /// Services the relay needs beside it (PostgreSQL's notification listener).
    let services: [any Service]
    /// One application transaction that enqueues the messages.
    let write: @Sendable ([OutboxMessage]) async throws -> Void
    let shutdown: @Sendable () async -> Void

    func enqueue(_ messages: [OutboxMessage]) async throws { try await write(messages) }
    func close() async { await shutdown() }

    static func open(url: String?, workspace: DemoWorkspace, logger: Logger) async throws -> BenchStore {
        let location = try url.map(StoreLocation.init(url:)) ?? StoreLocation(url: "sqlite://\(workspace.databasePath)")
        switch location.kind {
        case .sqlite(let path):
            let sqlite = try SQLiteOutboxStore(path: path)
            try await sqlite.migrate()
            return BenchStore(name: location.description, store: sqlite, services: [],
                              write: { messages in try await sqlite.writer.write { db in try sqlite.enqueue(messages, in: db) } },
                              shutdown: {})
        case .postgres(let url):
            try await url.checkConnection(logger: logger)
            let client = PostgresClient(configuration: url.clientConfiguration, backgroundLogger: logger)
            let running = Task { await client.run() }
            let schema = "outbox_bench_\(UUID().uuidString.prefix(8).lowercased())"
            let postgres = try PostgresOutboxStore(
                client: client, configuration: .init(schema: schema, listenerConnection: try url.makeConnectionConfiguration()), logger: logger)
            try await postgres.migrate()
            return BenchStore(
                name: "\(location) (schema \(schema))", store: postgres, services: [postgres],
                write: { messages in
                    try await client.withTransaction(logger: logger) { connection in
                        try await postgres.enqueue(messages, on: connection, logger: logger)
                    }
                },
                shutdown: {
                    _ = try? await client.query(PostgresQuery(unsafeSQL: "DROP SCHEMA \(schema) CASCADE"), logger: logger)
                    running.cancel()
                })
        case .mongo(let configuration):
            let client = try MongoClient(configuration: configuration)
            try await checkMongo(client)
            let prefix = "outbox_bench_\(UUID().uuidString.prefix(8).lowercased())"
            let mongo = try MongoOutboxStore(client: client, configuration: .init(collectionPrefix: prefix), logger: logger)
            try await mongo.migrate()
            return BenchStore(
                name: "\(location) (prefix \(prefix))", store: mongo, services: [mongo],
                write: { messages in
                    try await client.withTransaction { session in try await mongo.enqueue(messages, in: session) }
                },
                shutdown: {
                    for name in ["messages", "partitions", "leases", "relays", "meta"] {
                        _ = try? await client.runCommand(["drop": .string("\(prefix)_\(name)")])
                    }
                })
        case .mysql(let configuration):
            try await configuration.checkConnection()
            let prefix = "outbox_bench_\(UUID().uuidString.prefix(8).lowercased())"
            let mysql = try MySQLOutboxStore(connection: configuration, configuration: .init(tablePrefix: prefix), logger: logger)
            try await mysql.migrate()
            let application = MySQLConnectionPool(configuration: configuration, maximumConnections: 8)
            return BenchStore(
                name: "\(location) (prefix \(prefix))", store: mysql, services: [],
                write: { messages in
                    try await application.withTransaction { connection in try await mysql.enqueue(messages, on: connection) }
                },
                shutdown: {
                    for table in ["messages", "leases", "relays", "commit_guard", "migrations"] {
                        _ = try? await application.query("DROP TABLE IF EXISTS `\(prefix)_\(table)`")
                    }
                    await application.close()
                    await mysql.close()
                })
        }
    }
}
