import Foundation
import GRDB
import Logging
import Outbox
import OutboxMongo
import OutboxMySQL
import OutboxPostgres
import OutboxSQLite
import PostgresNIO

/// The application side of a store URL: the store under its default names, and one application
/// transaction of the store's kind that enqueues messages. Used by `outbox chaos-writer`.
struct ApplicationWriter: Sendable {
    let write: @Sendable ([OutboxMessage]) async throws -> Void
    let close: @Sendable () async -> Void

    static func open(_ location: StoreLocation, messageLimits: OutboxMessageLimits = .init(), logger: Logger) async throws -> ApplicationWriter {
        switch location.kind {
        case .sqlite(let path):
            let store = try SQLiteOutboxStore(path: path, configuration: .init(messageLimits: messageLimits))
            return ApplicationWriter(write: { messages in try await store.writer.write { db in try store.enqueue(messages, in: db) } },
                                     close: {})
        case .postgres(let url):
            try await url.checkConnection(logger: logger)
            let client = PostgresClient(configuration: url.clientConfiguration, backgroundLogger: logger)
            let running = Task { await client.run() }
            let store = try PostgresOutboxStore(client: client, configuration: .init(messageLimits: messageLimits), logger: logger)
            return ApplicationWriter(
                write: { messages in
                    try await client.withTransaction(logger: logger) { connection in try await store.enqueue(messages, on: connection, logger: logger) }
                },
                close: { running.cancel() })
        case .mysql(let configuration):
            try await configuration.checkConnection()
            let pool = MySQLConnectionPool(configuration: configuration, maximumConnections: 8)
            let store = try MySQLOutboxStore(connection: configuration, configuration: .init(messageLimits: messageLimits), logger: logger)
            return ApplicationWriter(
                write: { messages in try await pool.withTransaction { connection in try await store.enqueue(messages, on: connection) } },
                close: {
                    await pool.close()
                    await store.close()
                })
        case .mongo(let configuration):
            let client = try MongoClient(configuration: configuration)
            try await checkMongo(client)
            let store = try MongoOutboxStore(client: client, configuration: .init(messageLimits: messageLimits, usesChangeStream: false), logger: logger)
            return ApplicationWriter(write: { messages in try await client.withTransaction { session in try await store.enqueue(messages, in: session) } },
                                     close: {})
        }
    }
}
