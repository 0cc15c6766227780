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
import Synchronization

/// How a command wants its store opened.
struct StoreSettings: Sendable {
    /// Partitions a first `migrate` creates.
    var partitionCount = 32
    /// Whether a missing SQLite file may be created (only `migrate`, the demo, bench and chaos:
    /// for every other command a missing file is a mistyped path).
    var creating = false
    /// A separate outbox beside the default one — PostgreSQL schema, table or collection prefix —
    /// for runs that must not touch an existing outbox (bench). `nil`: the default names.
    var namespace: String?
    /// Size limits checked at enqueue.
    var messageLimits = OutboxMessageLimits()
    /// Whether relays of this process need the store's wake-up (PostgreSQL's listener, MongoDB's
    /// change stream). One-shot commands and writers do not.
    var wakeUps = false

    /// The store configuration these settings make: the same for every store.
    func configuration(schema: String? = nil, tablePrefix: String = "outbox") -> OutboxStoreConfiguration {
        OutboxStoreConfiguration(schema: schema, tablePrefix: tablePrefix, partitionCount: partitionCount,
                                 messageLimits: messageLimits, pushWakeUps: wakeUps)
    }
}

/// A store opened from a URL, what must run beside it, and the application's side of it: one
/// transaction of the store's own kind that writes business rows and enqueues messages.
///
/// Every command opens its store here; nothing else switches over the four stores.
struct OpenedStore: Sendable {
    /// The outbox store.
    let store: any OutboxStore
    /// The URL (password redacted), with the namespace when one was asked for.
    let name: String
    /// Clients the application and the store share (PostgreSQL's pool): run once, for as long as
    /// the store is used.
    let connections: [any Service]
    /// The store itself as a service (its wake-up), when ``StoreSettings/wakeUps`` asked for it:
    /// may run again after it stopped (bench scenarios each run it with their relays).
    let wakeUps: [any Service]
    /// Everything to run while the store is used, in start order.
    var services: [any Service] { connections + wakeUps }
    /// Creates the application's table `orders (id, note)` of this outbox's namespace, if missing.
    let createBusinessTable: @Sendable () async throws -> Void
    /// One application transaction: inserts a row into the business table for each note, enqueues
    /// the messages, commits.
    let write: @Sendable (_ messages: [OutboxMessage], _ businessRows: [String]) async throws -> Void
    /// Drops the namespace's tables or collections, the business table included (bench cleanup);
    /// does nothing on the default names, which may hold an application's outbox.
    let dropNamespace: @Sendable () async -> Void
    /// An inbox consumer on this store (its inbox migrated first) whose handler inserts one row
    /// into the business table per message, in the inbox's transaction: the note `note` returns
    /// for the message (a `note` that throws fails the handler).
    let makeInboxConsumer: @Sendable (
        _ source: any OutboxInboxSource, _ configuration: OutboxInboxConfiguration,
        _ note: @escaping @Sendable (OutboxInboxMessage) throws -> String
    ) async throws -> any Service
    /// Every note in the business table, in insertion order where the store keeps one (the
    /// MongoDB collection has none; readers that need an order write it into the note).
    let businessNotes: @Sendable () async throws -> [String]
    /// Queries the store's wake-up poller made so far (0 for stores that are notified).
    let pollQueries: @Sendable () -> Int
    /// Statements sent to the server so far, where the store's driver counts them (MySQL); the
    /// wake-up poller's probes included.
    var statementsSent: @Sendable () -> Int? = { nil }
    /// Releases what was opened outside the services.
    let close: @Sendable () async -> Void

    /// Enqueues the messages in one application transaction.
    func enqueue(_ messages: [OutboxMessage]) async throws { try await write(messages, []) }

    /// Opens the store of `location`.
    static func open(_ location: StoreLocation, settings: StoreSettings = .init(), logger: Logger) async throws -> OpenedStore {
        switch location.kind {
        case .sqlite(let path): try openSQLite(path: path, location: location, settings: settings)
        case .postgres(let url): try await openPostgres(url, location: location, settings: settings, logger: logger)
        case .mysql(let url): try await openMySQL(url, location: location, settings: settings, logger: logger)
        case .mongo(let url): try await openMongo(url, location: location, settings: settings, logger: logger)
        }
    }

    /// Runs the services while `body` runs, then stops them and closes the store.
    func withServices<T: Sendable>(_ body: @Sendable (OpenedStore) async throws -> T) async throws -> T {
        do {
            let result = try await withThrowingTaskGroup(of: Void.self) { group in
                let starting = ServicesStarting(count: services.count)
                for service in services {
                    group.addTask {
                        starting.oneStarted()
                        try await service.run()
                    }
                }
                defer { group.cancelAll() }
                try await starting.wait()
                return try await body(self)
            }
            await close()
            return result
        } catch {
            await close()
            throw error
        }
    }

    /// Starts the services in the background, for a store used beyond one call (a writer), and
    /// returns once they are running (a first query before a PostgresClient's `run()` warns).
    func start(_ services: [any Service]? = nil) async -> StartedStore {
        let services = services ?? self.services
        let starting = ServicesStarting(count: services.count)
        let running = Task {
            await withTaskGroup(of: Void.self) { group in
                for service in services {
                    group.addTask {
                        starting.oneStarted()
                        try? await service.run()
                    }
                }
            }
        }
        try? await starting.wait()
        return StartedStore(opened: self, running: running)
    }

    private static func named(_ location: StoreLocation, _ settings: StoreSettings, _ what: String) -> String {
        settings.namespace.map { "\(location) (\(what) \($0))" } ?? location.description
    }

    private static func openSQLite(path: String, location: StoreLocation, settings: StoreSettings) throws -> OpenedStore {
        if !settings.creating && !FileManager.default.fileExists(atPath: path) {
            throw OutboxError(code: .invalidConfiguration, operation: "open store",
                              message: "There is no outbox at \(path); check the path, or create it with `outbox migrate --store \(location)`.")
        }
        let prefix = settings.namespace ?? "outbox"
        let sqlite = try SQLiteOutboxStore(path: path, configuration: settings.configuration(tablePrefix: prefix))
        let orders = "\(prefix)_orders"
        // Cached statements, as GRDB recommends for repeated writes: parsing the insert again for
        // every row was most of the bench handler's cost.
        let insertOrder = "INSERT INTO \"\(orders)\" (note) VALUES (?)"
        return OpenedStore(
            store: sqlite, name: named(location, settings, "prefix"), connections: [], wakeUps: settings.wakeUps ? [sqlite] : [],
            createBusinessTable: {
                try await sqlite.writer.write { db in
                    try db.execute(sql: "CREATE TABLE IF NOT EXISTS \"\(orders)\" (id INTEGER PRIMARY KEY, note TEXT NOT NULL)")
                }
            },
            write: { messages, notes in
                try await sqlite.writer.write { db in
                    // Prepared only when there are rows: a writer of messages alone may run where
                    // no business table was created (the chaos writer without consumers).
                    if !notes.isEmpty {
                        let insert = try db.cachedStatement(sql: insertOrder)
                        for note in notes { try insert.execute(arguments: [note]) }
                    }
                    try sqlite.enqueue(messages, in: db)
                }
            },
            dropNamespace: {
                guard settings.namespace != nil else { return }
                try? await sqlite.writer.write { db in
                    for table in ["messages", "leases", "relays", "orders", "inbox", "inbox_dead"] {
                        try db.execute(sql: "DROP TABLE IF EXISTS \"\(prefix)_\(table)\"")
                    }
                    try db.execute(sql: "DELETE FROM grdb_migrations WHERE identifier LIKE ?", arguments: ["\(prefix).%"])
                }
            },
            makeInboxConsumer: { source, configuration, note in
                try await sqlite.migrateInbox()
                return OutboxInboxConsumer(store: sqlite, source: source, configuration: configuration, logger: sqlite.logger) { message, db in
                    try db.cachedStatement(sql: insertOrder).execute(arguments: [try note(message)])
                }
            },
            businessNotes: {
                try await sqlite.writer.read { db in try String.fetchAll(db, sql: "SELECT note FROM \"\(orders)\" ORDER BY id") }
            },
            pollQueries: { 0 }, close: {})
    }

    private static func openPostgres(_ url: PostgresConnectionURL, location: StoreLocation, settings: StoreSettings,
                                     logger: Logger) async throws -> OpenedStore {
        try await url.checkConnection()
        var quiet = logger
        quiet.logLevel = max(logger.logLevel, .warning)
        let client = PostgresClient(configuration: url.clientConfiguration, backgroundLogger: quiet)
        let schema = settings.namespace ?? "public"
        let postgres = try PostgresOutboxStore(client: client, configuration: settings.configuration(schema: schema), logger: logger)
        let orders = "\"\(schema)\".\"outbox_orders\""
        return OpenedStore(
            store: postgres, name: named(location, settings, "schema"),
            connections: [client], wakeUps: settings.wakeUps ? [postgres] : [],
            createBusinessTable: {
                try await client.query(PostgresQuery(unsafeSQL: "CREATE TABLE IF NOT EXISTS \(orders) (id BIGSERIAL PRIMARY KEY, note TEXT NOT NULL)"),
                                       logger: logger)
            },
            write: { messages, notes in
                // The store's own transaction: its enqueue needs no check that a transaction is open.
                try await postgres.withTransaction(logger: logger) { transaction in
                    for note in notes {
                        var insert = PostgresQuery(unsafeSQL: "INSERT INTO \(orders) (note) VALUES ($1)")
                        insert.binds.append(note)
                        try await transaction.connection.query(insert, logger: logger)
                    }
                    try await transaction.enqueue(messages)
                }
            },
            dropNamespace: {
                guard settings.namespace != nil else { return }
                _ = try? await client.query(PostgresQuery(unsafeSQL: "DROP SCHEMA \"\(schema)\" CASCADE"), logger: logger)
            },
            makeInboxConsumer: { source, configuration, note in
                try await postgres.migrateInbox()
                return OutboxInboxConsumer(store: postgres, source: source, configuration: configuration, logger: logger) { message, connection in
                    var insert = PostgresQuery(unsafeSQL: "INSERT INTO \(orders) (note) VALUES ($1)")
                    insert.binds.append(try note(message))
                    try await connection.query(insert, logger: logger)
                }
            },
            businessNotes: {
                var notes: [String] = []
                let rows = try await client.query(PostgresQuery(unsafeSQL: "SELECT note FROM \(orders) ORDER BY id"), logger: logger)
                for try await note in rows.decode(String.self) { notes.append(note) }
                return notes
            },
            pollQueries: { 0 }, close: {})
    }

    private static func openMySQL(_ url: MySQLConnectionURL, location: StoreLocation, settings: StoreSettings,
                                  logger: Logger) async throws -> OpenedStore {
        try await url.checkConnection()
        let prefix = settings.namespace ?? "outbox"
        // The application's pool; the store shares it. Its sessions run at READ COMMITTED, the
        // store's level, so the store's transactions need no SET TRANSACTION (the command's own
        // application writes — chaos-writer, bench — are single inserts, at home at that level).
        let pool = MySQLConnectionPool(configuration: url.configuration, maximumConnections: 8, isolation: .readCommitted)
        let mysql = try MySQLOutboxStore(pool: pool, configuration: settings.configuration(tablePrefix: prefix), logger: logger)
        let orders = "`\(prefix)_orders`"
        return OpenedStore(
            store: mysql, name: named(location, settings, "prefix"), connections: [], wakeUps: settings.wakeUps ? [mysql] : [],
            createBusinessTable: {
                try await pool.query("CREATE TABLE IF NOT EXISTS \(orders) (id BIGINT AUTO_INCREMENT PRIMARY KEY, note VARBINARY(4096) NOT NULL) ENGINE=InnoDB")
            },
            write: { messages, notes in
                try await pool.withTransaction { connection in
                    for note in notes { try await connection.query("INSERT INTO \(orders) (note) VALUES (?)", [.text(note)]) }
                    try await mysql.enqueue(messages, in: connection)
                }
            },
            dropNamespace: {
                guard settings.namespace != nil else { return }
                try? await mysql.dropSchema()
                _ = try? await pool.query("DROP TABLE IF EXISTS \(orders)")
            },
            makeInboxConsumer: { source, configuration, note in
                try await mysql.migrateInbox()
                return OutboxInboxConsumer(store: mysql, source: source, configuration: configuration, logger: logger) { message, connection in
                    try await connection.query("INSERT INTO \(orders) (note) VALUES (?)", [.text(try note(message))])
                }
            },
            businessNotes: {
                try await pool.query("SELECT note FROM \(orders) ORDER BY id").rows.compactMap { $0[0].string }
            },
            pollQueries: { mysql.pollQueries },
            statementsSent: { pool.statementsSent },
            close: { await pool.close() })
    }

    private static func openMongo(_ url: MongoConnectionURL, location: StoreLocation, settings: StoreSettings,
                                  logger: Logger) async throws -> OpenedStore {
        try await url.checkConnection()
        let client = try MongoClient(configuration: url.configuration)
        let prefix = settings.namespace ?? "outbox"
        let mongo = try MongoOutboxStore(client: client, configuration: settings.configuration(tablePrefix: prefix), logger: logger)
        let orders = client.collection("\(prefix)_orders")
        return OpenedStore(
            store: mongo, name: named(location, settings, "prefix"), connections: [], wakeUps: settings.wakeUps ? [mongo] : [],
            createBusinessTable: {},
            write: { messages, notes in
                try await client.withTransaction { session in
                    for note in notes { try await orders.insertOne(["note": .string(note)], session: session) }
                    try await mongo.enqueue(messages, in: session)
                }
            },
            dropNamespace: {
                guard settings.namespace != nil else { return }
                for name in ["messages", "partitions", "leases", "relays", "meta", "orders", "inbox", "inbox_dead", "inbox_meta"] {
                    _ = try? await client.runCommand(["drop": .string("\(prefix)_\(name)")])
                }
            },
            makeInboxConsumer: { source, configuration, note in
                try await mongo.migrateInbox()
                return OutboxInboxConsumer(store: mongo, source: source, configuration: configuration, logger: logger) { message, session in
                    try await orders.insertOne(["note": .string(try note(message))], session: session)
                }
            },
            businessNotes: {
                try await orders.find([:], sort: ["_id": .int32(1)]).compactMap { $0["note"]?.stringValue }
            },
            pollQueries: { mongo.pollQueries }, close: {})
    }
}

/// A store whose services run in the background until ``stop()``.
struct StartedStore: Sendable {
    let opened: OpenedStore
    let running: Task<Void, Never>

    /// Cancels the services and closes the store.
    func stop() async {
        running.cancel()
        await running.value
        await opened.close()
    }
}

/// Lets a command wait until every service task is about to call `run()`, and a moment more:
/// PostgresClient warns ("run() hasn't been called yet") when the first lease comes before
/// its run() began, which the first query of `outbox status` otherwise did every time.
private final class ServicesStarting: Sendable {
    private let remaining: Mutex<Int>
    private let started = OutboxSignal()

    init(count: Int) { remaining = Mutex(count) }

    func oneStarted() {
        remaining.withLock { $0 -= 1 }
        started.signal()
    }

    func wait() async throws {
        let deadline = ContinuousClock.now + .seconds(1)
        while ContinuousClock.now < deadline {
            let generation = started.generation
            if remaining.withLock({ $0 }) <= 0 { break }
            await started.wait(since: generation, timeout: .milliseconds(10))
        }
        try await Task.sleep(for: .milliseconds(5))
    }
}
