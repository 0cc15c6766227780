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

/// What the enqueue scenario's application transaction writes.
enum BusinessWrite: Sendable {
    /// One business row: the application's transaction without an outbox.
    case alone
    /// The business row and a second plain row carrying the message's payload: what writing
    /// anything more in the transaction costs, the floor for any transactional outbox.
    case withSecondRow
    /// The business row and the outbox message.
    case withOutbox
}

/// The store a bench run writes to, with the application-side enqueue of its kind.
struct BenchStore: Sendable {
    let name: String
    let store: any OutboxStore
    /// Services the relay needs beside it (PostgreSQL's notification listener).
    let services: [any Service]
    /// One application transaction that enqueues the messages.
    let write: @Sendable ([OutboxMessage]) async throws -> Void
    /// One application transaction that inserts a business row, and maybe more (see ``BusinessWrite``).
    let writeBusiness: @Sendable (_ kind: BusinessWrite, _ message: OutboxMessage) async throws -> Void
    /// One transaction that enqueues through a second store object with its own connections and
    /// signals, as another process would: the relay hears of it only through the store's
    /// cross-process path (NOTIFY, change stream, `data_version`, polling).
    let writeElsewhere: @Sendable ([OutboxMessage]) async throws -> Void
    /// Queries the store's wake-up poller made so far (0 for stores that are notified).
    let pollQueries: @Sendable () -> Int
    let shutdown: @Sendable () async -> Void

    func enqueue(_ messages: [OutboxMessage]) async throws { try await write(messages) }
    func close() async { await shutdown() }

    static func open(url: String?, workspace: DemoWorkspace, logger: Logger) async throws -> BenchStore {
        let location = try url.map(StoreLocation.init(url:)) ?? StoreLocation(url: "sqlite://\(workspace.databasePath)")
        switch location.kind {
        case .sqlite(let path):
            let sqlite = try SQLiteOutboxStore(path: path)
            try await sqlite.migrate()
            try await sqlite.writer.write { db in
                try db.execute(sql: "CREATE TABLE IF NOT EXISTS bench_orders (id INTEGER PRIMARY KEY, note TEXT NOT NULL)")
            }
            return BenchStore(name: location.description, store: sqlite, services: [],
                              write: { messages in try await sqlite.writer.write { db in try sqlite.enqueue(messages, in: db) } },
                              writeBusiness: { kind, message in
                                  try await sqlite.writer.write { db in
                                      try db.execute(sql: "INSERT INTO bench_orders (note) VALUES (?)", arguments: ["order"])
                                      switch kind {
                                      case .alone: break
                                      case .withSecondRow:
                                          try db.execute(sql: "INSERT INTO bench_orders (note) VALUES (?)", arguments: [String(decoding: message.payload, as: UTF8.self)])
                                      case .withOutbox: try sqlite.enqueue([message], in: db)
                                      }
                                  }
                              },
                              writeElsewhere: { messages in
                                  let other = try SQLiteOutboxStore(path: path)
                                  try await other.writer.write { db in try other.enqueue(messages, in: db) }
                              },
                              pollQueries: { 0 }, shutdown: {})
        case .postgres(let url):
            try await url.checkConnection(logger: logger)
            let client = PostgresClient(configuration: url.clientConfiguration, backgroundLogger: logger)
            let running = Task { await client.run() }
            let schema = "outbox_bench_\(UUID().uuidString.prefix(8).lowercased())"
            let postgres = try PostgresOutboxStore(
                client: client, configuration: .init(schema: schema, listenerConnection: try url.makeConnectionConfiguration()), logger: logger)
            try await postgres.migrate()
            try await client.query(PostgresQuery(unsafeSQL: "CREATE TABLE \(schema).bench_orders (id BIGSERIAL PRIMARY KEY, note TEXT NOT NULL)"), logger: logger)
            return BenchStore(
                name: "\(location) (schema \(schema))", store: postgres, services: [postgres],
                write: { messages in
                    try await client.withTransaction(logger: logger) { connection in
                        try await postgres.enqueue(messages, on: connection, logger: logger)
                    }
                },
                writeBusiness: { kind, message in
                    try await client.withTransaction(logger: logger) { connection in
                        try await connection.query(PostgresQuery(unsafeSQL: "INSERT INTO \(schema).bench_orders (note) VALUES ('order')"), logger: logger)
                        switch kind {
                        case .alone: break
                        case .withSecondRow:
                            var insert = PostgresQuery(unsafeSQL: "INSERT INTO \(schema).bench_orders (note) VALUES ($1)")
                            insert.binds.append(String(decoding: message.payload, as: UTF8.self))
                            try await connection.query(insert, logger: logger)
                        case .withOutbox: try await postgres.enqueue([message], on: connection, logger: logger)
                        }
                    }
                },
                // NOTIFY reaches the listener whichever connection sent it.
                writeElsewhere: { messages in
                    try await client.withTransaction(logger: logger) { connection in
                        try await postgres.enqueue(messages, on: connection, logger: logger)
                    }
                },
                pollQueries: { 0 },
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
            let orders = client.collection("\(prefix)_orders")
            return BenchStore(
                name: "\(location) (prefix \(prefix))", store: mongo, services: [mongo],
                write: { messages in
                    try await client.withTransaction { session in try await mongo.enqueue(messages, in: session) }
                },
                writeBusiness: { kind, message in
                    try await client.withTransaction { session in
                        try await orders.insertOne(["note": "order"], session: session)
                        switch kind {
                        case .alone: break
                        case .withSecondRow:
                            try await orders.insertOne(["note": .string(String(decoding: message.payload, as: UTF8.self))], session: session)
                        case .withOutbox: try await mongo.enqueue([message], in: session)
                        }
                    }
                },
                writeElsewhere: { messages in
                    let other = try MongoOutboxStore(client: client, configuration: .init(collectionPrefix: prefix), logger: logger)
                    try await client.withTransaction { session in try await other.enqueue(messages, in: session) }
                },
                pollQueries: { mongo.pollQueries },
                shutdown: {
                    for name in ["messages", "partitions", "leases", "relays", "meta", "orders"] {
                        _ = try? await client.runCommand(["drop": .string("\(prefix)_\(name)")])
                    }
                })
        case .mysql(let configuration):
            try await configuration.checkConnection()
            let prefix = "outbox_bench_\(UUID().uuidString.prefix(8).lowercased())"
            let mysql = try MySQLOutboxStore(connection: configuration, configuration: .init(tablePrefix: prefix), logger: logger)
            try await mysql.migrate()
            let application = MySQLConnectionPool(configuration: configuration, maximumConnections: 8)
            try await application.query("CREATE TABLE `\(prefix)_orders` (id BIGINT AUTO_INCREMENT PRIMARY KEY, note VARBINARY(4096) NOT NULL) ENGINE=InnoDB")
            return BenchStore(
                name: "\(location) (prefix \(prefix))", store: mysql, services: [],
                write: { messages in
                    try await application.withTransaction { connection in try await mysql.enqueue(messages, on: connection) }
                },
                writeBusiness: { kind, message in
                    try await application.withTransaction { connection in
                        try await connection.query("INSERT INTO `\(prefix)_orders` (note) VALUES (?)", ["order"])
                        switch kind {
                        case .alone: break
                        case .withSecondRow:
                            try await connection.query("INSERT INTO `\(prefix)_orders` (note) VALUES (?)", [.bytes(message.payload)])
                        case .withOutbox: try await mysql.enqueue([message], on: connection)
                        }
                    }
                },
                writeElsewhere: { messages in
                    let other = try MySQLOutboxStore(connection: configuration, configuration: .init(tablePrefix: prefix), logger: logger)
                    defer { Task { await other.close() } }
                    try await application.withTransaction { connection in try await other.enqueue(messages, on: connection) }
                },
                pollQueries: { mysql.pollQueries },
                shutdown: {
                    for table in ["messages", "leases", "relays", "commit_guard", "migrations", "orders"] {
                        _ = try? await application.query("DROP TABLE IF EXISTS `\(prefix)_\(table)`")
                    }
                    await application.close()
                    await mysql.close()
                })
        }
    }
}
