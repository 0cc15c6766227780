public import Foundation
public import GRDB
public import Outbox
import Logging
import Synchronization

/// The embedded outbox store, on SQLite through GRDB.
///
/// Enqueue inside your own GRDB transaction, so the message exists if and only if your business
/// write commits:
///
/// ```swift
/// let store = try SQLiteOutboxStore(path: "app.sqlite")
/// try await store.migrate()
/// try await store.writer.write { db in
///     try db.execute(sql: "INSERT INTO orders (id, total) VALUES (?, ?)", arguments: [id, total])
///     try store.enqueue(OutboxMessage(topic: "orders", key: id, type: "OrderPlaced", payload: bytes), in: db)
/// }
/// ```
///
/// Relays in the same process are woken at commit; relays in other processes notice new commits
/// through `PRAGMA data_version` within ``Configuration/changeCheckInterval``.
public final class SQLiteOutboxStore: OutboxStore, OutboxKitStore, Sendable {
    /// Settings of the SQLite store; see ``OutboxStoreConfiguration``. It uses `tablePrefix`,
    /// `partitionCount`, `messageLimits` and, as the interval of its `data_version` check for
    /// commits of other processes, `minimumPollInterval`.
    public typealias Configuration = OutboxStoreConfiguration

    /// The database the outbox lives in; use it for your own transactions.
    public let writer: any DatabaseWriter
    package let kit: OutboxStoreKit
    /// The statements, with this store's table names.
    let statements: SQLiteStatements
    let path: String
    private let commits: OutboxSignal
    private let wakeUpCursor = OutboxSignalCursor()
    private let changeWatcher: SQLiteChangeWatcher?

    /// Opens (or creates) the SQLite file at `path` in WAL mode, ready for several processes.
    ///
    /// - Throws: ``OutboxError`` with code `.invalidConfiguration` when the file cannot be opened.
    /// - Parameter busyTimeout: how long a write waits for another connection's lock before failing.
    public convenience init(path: String, configuration: Configuration = .init(), busyTimeout: Duration = .seconds(10)) throws {
        guard !path.isEmpty else {
            throw OutboxError(code: .invalidConfiguration, operation: "open", message: "The SQLite path is empty; give a file path such as outbox.sqlite.")
        }
        var grdb = GRDB.Configuration()
        grdb.busyMode = .timeout(busyTimeout.timeInterval)
        grdb.label = "outbox"
        let pool: DatabasePool
        do {
            pool = try DatabasePool(path: path, configuration: grdb)
        } catch {
            throw SQLiteErrors.map(error, operation: "open", path: path)
        }
        try self.init(writer: pool, configuration: configuration)
    }

    /// Uses a database you opened yourself (the application's own `DatabasePool` or queue). Give
    /// it a busy timeout (`busyMode = .timeout(…)`) when other processes write to the same file.
    ///
    /// - Throws: ``OutboxError`` with code `.invalidConfiguration` for an invalid table prefix.
    public init(writer: any DatabaseWriter, configuration: Configuration = .init()) throws {
        _ = try OutboxStoreSupport.requireIdentifier(configuration.tablePrefix, what: "table prefix", store: "SQLite")
        self.writer = writer
        self.statements = SQLiteStatements(prefix: configuration.tablePrefix)
        self.path = writer.path
        let path = writer.path
        // GRDB errors become ``OutboxError``s naming the file and what to fix.
        kit = OutboxStoreKit(store: "SQLite", configuration: configuration, logger: Logger(label: "outbox.sqlite")) {
            SQLiteErrors.map($0, operation: $1, path: path)
        }
        self.commits = SQLiteCommitSignals.signal(for: writer.path)
        self.changeWatcher = SQLiteChangeWatcher(writer: writer)
    }

    // MARK: - Enqueue

    /// Adds a message to the outbox inside the caller's transaction.
    ///
    /// Call it from `writer.write { db in … }` (or any GRDB transaction): if the transaction rolls
    /// back, the message was never there. The current trace context is added to its headers.
    ///
    /// - Throws: ``OutboxError`` with code `.invalidMessage` for a message that breaks the limits
    ///   or whose id is already in the outbox, `.schemaMismatch` when `migrate()` has not run.
    public func enqueue(_ message: OutboxMessage, in db: Database) throws {
        try insert([message], in: db)
    }

    /// Adds several messages inside the caller's transaction, in order.
    public func enqueue(_ messages: some Sequence<OutboxMessage>, in db: Database) throws {
        try insert(Array(messages), in: db)
    }

    /// The enqueue itself, on a concrete array (a generic body would run unspecialised when
    /// called from another module).
    private func insert(_ messages: [OutboxMessage], in db: Database) throws {
        guard db.isInsideTransaction else {
            throw OutboxError(code: .invalidConfiguration, operation: "enqueue",
                              message: "enqueue must run inside a transaction (writer.write { db in … }), or the message would not be atomic with your data.")
        }
        do {
            let partitionCount = try kit.partitionCounts.value { try Int.fetchOne(db, sql: self.statements.named("SELECT count(*) FROM outbox_leases")) ?? 0 }
            let prepared = try OutboxPreparedMessage.prepare(messages, limits: configuration.messageLimits, partitionCount: partitionCount)
            let statement = try db.cachedStatement(sql: self.statements.insert)
            for item in prepared {
                let message = item.message
                try statement.execute(arguments: [
                    OutboxUUIDText.string(message.id), message.topic, message.key, message.type,
                    Data(message.payload), Data(item.encodedHeaders), item.partition,
                    SQLiteTime.microseconds(message.createdAt), OutboxStoreSupport.dueAtOnceMicroseconds,
                ])
            }
            let count = prepared.count
            if count > 0 {
                let commits = self.commits
                db.afterNextTransaction { _ in commits.signal() }
            }
        } catch let error as DatabaseError where error.resultCode == .SQLITE_READONLY && Self.isReadOnlyAccess(db) {
            // A read access (`read { db in … }`, a reader of a pool) is read-only on purpose; the
            // file is fine, the call site is not.
            throw OutboxError(code: .invalidConfiguration, operation: "enqueue",
                              message: "enqueue ran inside a read-only access (read { db in … }); call it inside writer.write { db in … }.",
                              underlying: OutboxUnderlyingError(error))
        } catch {
            throw SQLiteErrors.map(error, operation: "enqueue", path: path)
        }
    }

    /// Whether `db` is a read-only access (GRDB's readers and `read` run with `query_only`, or on a
    /// connection opened read-only), as opposed to a read-only file.
    private static func isReadOnlyAccess(_ db: Database) -> Bool {
        db.configuration.readonly || ((try? Bool.fetchOne(db, sql: "PRAGMA query_only")) ?? false) == true
    }

    // MARK: - OutboxStore

    public func migrate() async throws {
        try await kit.errors.migrate(partitionCount: configuration.partitionCount) { [writer, configuration] in
            try SQLiteSchema.migrator(prefix: configuration.tablePrefix, partitionCount: configuration.partitionCount).migrate(writer)
        }
    }

    public func heartbeat(_ request: OutboxHeartbeat) async throws -> OutboxLeaseGrant {
        try await write("heartbeat") { db in
            let leases = try Row.fetchAll(db, sql: self.statements.named("SELECT partition, owner, expires_at FROM outbox_leases ORDER BY partition")).map {
                OutboxLeasePlanner.Lease(partition: $0["partition"], owner: $0["owner"], expiresAt: SQLiteTime.date($0["expires_at"]))
            }
            let registrations = try Row.fetchAll(db, sql: self.statements.named("SELECT relay_id, expires_at, instance FROM outbox_relays")).map {
                OutboxLeasePlanner.Registration(relayID: $0["relay_id"], expiresAt: SQLiteTime.date($0["expires_at"]), instanceID: $0["instance"])
            }
            let plan = OutboxLeasePlanner.plan(request, leases: leases, registrations: registrations)
            let update = try db.cachedStatement(sql: self.statements.named("UPDATE outbox_leases SET owner = ?, expires_at = ? WHERE partition = ?"))
            for lease in plan.changedLeases {
                try update.execute(arguments: [lease.owner, SQLiteTime.microseconds(lease.expiresAt), lease.partition])
            }
            if !plan.grant.relayIDInUse {
                try db.execute(sql: self.statements.named("""
                    INSERT INTO outbox_relays (relay_id, expires_at, in_flight, instance, published) VALUES (?, ?, ?, ?, ?)
                    ON CONFLICT (relay_id) DO UPDATE SET expires_at = excluded.expires_at, in_flight = excluded.in_flight,
                                                         instance = excluded.instance, published = excluded.published
                    """), arguments: [request.relayID, SQLiteTime.microseconds(plan.registration.expiresAt), request.inFlight,
                                    plan.registration.instanceID, request.published])
            }
            for relay in plan.lapsedRelays {
                try db.execute(sql: self.statements.named("DELETE FROM outbox_relays WHERE relay_id = ?"), arguments: [relay])
            }
            return plan.grant
        }
    }

    public func resign(relayID: String) async throws {
        try await write("resign") { db in
            try db.execute(sql: self.statements.named("UPDATE outbox_leases SET owner = NULL, expires_at = 0 WHERE owner = ?"), arguments: [relayID])
            try db.execute(sql: self.statements.named("DELETE FROM outbox_relays WHERE relay_id = ?"), arguments: [relayID])
        }
    }

    public func claim(partitions: [Int], limit: Int, maximumBytes: Int, now: Date, excluding: [Int64]) async throws -> [OutboxRecord] {
        guard !partitions.isEmpty, limit > 0 else { return [] }
        let list = "[" + partitions.map(String.init).joined(separator: ",") + "]"
        let skipped = "[" + excluding.map(String.init).joined(separator: ",") + "]"
        return try await read("claim") { db in
            // The scan walks pending rows in commit order through the partial index; the NOT EXISTS
            // probe only touches rows waiting for a retry (a second, small partial index).
            let rows = try Row.fetchCursor(db, sql: self.statements.claim,
                                           arguments: ["now": SQLiteTime.microseconds(now), "partitions": list, "skipped": skipped, "limit": limit])
            var records: [OutboxRecord] = []
            records.reserveCapacity(limit)
            // Rows are read one at a time: stopping here leaves the rest unread.
            var bytes = 0
            while bytes < maximumBytes, let row = try rows.next() {
                let record = try Self.record(row)
                bytes += record.message.payload.count
                records.append(record)
            }
            return records
        }
    }

    public func acknowledge(_ acknowledgement: OutboxAcknowledgement) async throws -> OutboxAcknowledgementResult {
        guard !acknowledgement.isEmpty else { return OutboxAcknowledgementResult(applied: 0, fenced: 0) }
        return try await write("acknowledge") { db in
            let owned = try Set(Int.fetchAll(db, sql: self.statements.ownedPartitions,
                                             arguments: [acknowledgement.relayID]))
            var applied = 0
            var fenced = 0
            let now = SQLiteTime.microseconds(acknowledgement.now)
            let deliver = acknowledgement.retainDelivered
                ? try db.cachedStatement(sql: self.statements.markDelivered)
                : try db.cachedStatement(sql: self.statements.deleteDelivered)
            for reference in acknowledgement.delivered {
                guard owned.contains(reference.partition) else { fenced += 1; continue }
                try deliver.execute(arguments: acknowledgement.retainDelivered ? [now, reference.sequence] : [reference.sequence])
                applied += db.changesCount
            }
            let retry = try db.cachedStatement(sql: self.statements.reschedule)
            for item in acknowledgement.retries {
                guard owned.contains(item.partition) else { fenced += 1; continue }
                try retry.execute(arguments: [SQLiteTime.microseconds(item.availableAt), item.error, item.sequence])
                applied += db.changesCount
            }
            let bury = try db.cachedStatement(sql: self.statements.deadLetter)
            for item in acknowledgement.deadLetters {
                guard owned.contains(item.partition) else { fenced += 1; continue }
                try bury.execute(arguments: [item.error, now, item.sequence])
                applied += db.changesCount
            }
            return OutboxAcknowledgementResult(applied: applied, fenced: fenced)
        }
    }

    public func waitForNewMessages(timeout: Duration) async {
        var waits: [@Sendable () async -> Void] = [{ await self.wakeUpCursor.wait(on: self.commits, timeout: timeout) }]
        if let changeWatcher {
            waits.append { await changeWatcher.waitForChange(checkEvery: self.configuration.minimumPollInterval, timeout: timeout) }
        }
        await OutboxWakeUp.first(of: waits)
    }

    public func removeDelivered(finishedBefore cutoff: Date, limit: Int) async throws -> Int {
        try await write("remove delivered") { db in
            try db.execute(sql: self.statements.removeDelivered, arguments: [SQLiteTime.microseconds(cutoff), limit])
            return db.changesCount
        }
    }

    public func backlog(now: Date, countLimit: Int) async throws -> OutboxBacklog {
        try await read("backlog") { db in
            // Each part walks one partial index: at most `countLimit` entries, or one probe.
            let row = try Row.fetchOne(db, sql: self.statements.named("""
                SELECT (SELECT count(*) FROM (SELECT 1 FROM outbox_messages WHERE state = 0 LIMIT ?1)) AS pending,
                       (SELECT count(*) FROM (SELECT 1 FROM outbox_messages WHERE state = 1 LIMIT ?1)) AS dead,
                       (SELECT created_at FROM outbox_messages WHERE state = 0 ORDER BY sequence LIMIT 1) AS oldest
                """), arguments: [countLimit])!
            return OutboxBacklog(pending: row["pending"], dead: row["dead"], countLimit: countLimit,
                                 oldestPendingAge: OutboxBacklog.age(of: (row["oldest"] as Int64?).map(SQLiteTime.date), now: now))
        }
    }

    public func status(now: Date) async throws -> OutboxStatus {
        let migrator = SQLiteSchema.migrator(prefix: configuration.tablePrefix, partitionCount: configuration.partitionCount)
        return try await read("status") { db in
            // A schema older than the build is named here, where a relay command checks before it
            // starts; migrations of a newer build are accepted.
            let applied = try migrator.appliedIdentifiers(db)
            let missing = migrator.migrations.filter { !applied.contains($0) }
            guard missing.isEmpty else {
                throw OutboxError(code: .schemaMismatch, operation: "status",
                                  message: "The SQLite outbox lacks \(missing.count) of this build's \(migrator.migrations.count) migrations; run `outbox migrate` first.")
            }
            let counts = try Row.fetchOne(db, sql: self.statements.named("""
                SELECT count(*) FILTER (WHERE state = 0) AS pending,
                       count(*) FILTER (WHERE state = 0 AND attempts > 0) AS retrying,
                       count(*) FILTER (WHERE state = 1) AS dead,
                       count(*) FILTER (WHERE state = 2) AS delivered,
                       min(created_at) FILTER (WHERE state = 0) AS oldest
                FROM outbox_messages
                """))!
            var parts = OutboxStatusParts()
            (parts.pending, parts.retrying, parts.dead, parts.delivered) = (counts["pending"], counts["retrying"], counts["dead"], counts["delivered"])
            parts.oldestPending = (counts["oldest"] as Int64?).map(SQLiteTime.date)
            parts.owners = try Row.fetchAll(db, sql: self.statements.named("SELECT partition, owner, expires_at FROM outbox_leases")).map {
                ($0["partition"], $0["owner"], SQLiteTime.date($0["expires_at"]))
            }
            parts.relays = try Row.fetchAll(db, sql: self.statements.named("SELECT relay_id, expires_at, in_flight, published FROM outbox_relays WHERE expires_at > ?"),
                                            arguments: [SQLiteTime.microseconds(now)]).map {
                ($0["relay_id"], SQLiteTime.date($0["expires_at"]), $0["in_flight"], $0["published"])
            }
            return parts.status(now: now)
        }
    }

    public func deadLetters(limit: Int, afterSequence: Int64?) async throws -> [OutboxDeadLetter] {
        try await read("list dead letters") { db in
            try Row.fetchAll(db, sql: self.statements.deadLetters, arguments: [afterSequence ?? 0, limit]).map {
                OutboxDeadLetter(record: try Self.record($0), failedAt: SQLiteTime.date($0["finished_at"] ?? 0))
            }
        }
    }

    public func retryDeadLetters(sequences: [Int64], now: Date) async throws -> Int {
        let count = try await write("retry dead letters") { db in
            var count = 0
            let statement = try db.cachedStatement(sql: self.statements.named("""
                UPDATE outbox_messages SET state = 0, attempts = 0, available_at = ?, finished_at = NULL
                WHERE sequence = ? AND state = 1
                """))
            for sequence in sequences {
                try statement.execute(arguments: [OutboxStoreSupport.dueAtOnceMicroseconds, sequence])
                count += db.changesCount
            }
            return count
        }
        if count > 0 { commits.signal() }
        return count
    }

    public func discardDeadLetters(sequences: [Int64]) async throws -> Int {
        try await write("discard dead letters") { db in
            var count = 0
            let statement = try db.cachedStatement(sql: self.statements.named("DELETE FROM outbox_messages WHERE sequence = ? AND state = 1"))
            for sequence in sequences {
                try statement.execute(arguments: [sequence])
                count += db.changesCount
            }
            return count
        }
    }

    // MARK: - Plumbing

    /// Reads a row leniently: SQLite keeps any type in any column, and GRDB stops the process when
    /// a column cannot be converted to the type asked for, so every column is read as a
    /// `DatabaseValue` and converted here. A row that cannot be read whole is a damaged record.
    static func record(_ row: Row) throws -> OutboxRecord {
        func text(_ column: String) -> String? {
            let value: DatabaseValue = row[column]
            return String.fromDatabaseValue(value)
        }
        func bytes(_ column: String) -> [UInt8]? {
            let value: DatabaseValue = row[column]
            if case .blob(let data) = value.storage { return [UInt8](data) }
            return nil
        }
        func integer(_ column: String) -> Int64? {
            let value: DatabaseValue = row[column]
            if case .int64(let number) = value.storage { return number }
            return nil
        }
        var damage: [String] = []
        let keyValue: DatabaseValue = row["message_key"]
        let key = text("message_key")
        if key == nil && !keyValue.isNull { damage.append("the key is not text") }
        let typeValue: DatabaseValue = row["message_type"]
        let type = text("message_type")
        if type == nil && !typeValue.isNull { damage.append("the type is not text") }
        let stored = OutboxStoredMessage(
            sequence: integer("sequence") ?? 0, partition: Int(integer("partition") ?? 0),
            id: text("id").flatMap(OutboxUUIDText.uuid), topic: text("topic"), key: key, type: type,
            payload: bytes("payload"), headers: bytes("headers"), createdAt: integer("created_at").map(SQLiteTime.date),
            attempts: Int(integer("attempts") ?? 0), lastError: text("last_error"), damage: damage)
        return stored.record
    }

    /// A write in an IMMEDIATE transaction: it takes the write lock up front, so a read-then-write
    /// (the heartbeat) cannot fail with a stale snapshot when other processes write too.
    func write<T: Sendable>(_ operation: String, _ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await perform(operation) { [writer] in
            try await writer.writeWithoutTransaction { db in
                var result: T?
                try db.inTransaction(.immediate) {
                    result = try body(db)
                    return .commit
                }
                return result!
            }
        }
    }

    func read<T: Sendable>(_ operation: String, _ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await perform(operation) { [writer] in try await writer.read(body) }
    }

    private func perform<T: Sendable>(_ operation: String, _ body: () async throws -> T) async throws -> T {
        try await kit.perform(operation, body)
    }
}
