public import Foundation
public import GRDB
public import Outbox
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
public final class SQLiteOutboxStore: OutboxStore, Sendable {
    /// Settings of the SQLite store; every value has a default.
    public struct Configuration: Sendable {
        /// Virtual partitions created by the first migration (later changes have no effect). Default 32.
        public var partitionCount: Int
        /// How often a waiting relay checks for commits made by other processes. Default 10 ms.
        public var changeCheckInterval: Duration
        /// How long a write waits for another connection's lock before failing. Default 10 s.
        public var busyTimeout: Duration
        /// Size limits checked at enqueue.
        public var messageLimits: OutboxMessageLimits

        /// Creates a configuration.
        public init(
            partitionCount: Int = 32,
            changeCheckInterval: Duration = .milliseconds(10),
            busyTimeout: Duration = .seconds(10),
            messageLimits: OutboxMessageLimits = .init()
        ) {
            self.partitionCount = partitionCount
            self.changeCheckInterval = changeCheckInterval
            self.busyTimeout = busyTimeout
            self.messageLimits = messageLimits
        }
    }

    /// The database the outbox lives in; use it for your own transactions.
    public let writer: any DatabaseWriter
    let configuration: Configuration
    let path: String
    private let partitionCountCache = Mutex<Int?>(nil)
    private let commits: OutboxSignal
    private let wakeUpCursor = OutboxSignalCursor()
    private let changeWatcher: SQLiteChangeWatcher?

    /// Opens (or creates) the SQLite file at `path` in WAL mode, ready for several processes.
    ///
    /// - Throws: ``OutboxError`` with code `.invalidConfiguration` when the file cannot be opened.
    public convenience init(path: String, configuration: Configuration = .init()) throws {
        guard !path.isEmpty else {
            throw OutboxError(code: .invalidConfiguration, operation: "open", message: "The SQLite path is empty; give a file path such as outbox.sqlite.")
        }
        var grdb = GRDB.Configuration()
        grdb.busyMode = .timeout(configuration.busyTimeout.timeInterval)
        grdb.label = "outbox"
        let pool: DatabasePool
        do {
            pool = try DatabasePool(path: path, configuration: grdb)
        } catch {
            throw SQLiteErrors.map(error, operation: "open", path: path)
        }
        self.init(writer: pool, configuration: configuration)
    }

    /// Uses a database you opened yourself. Give it a busy timeout (`busyMode = .timeout(…)`) when
    /// other processes write to the same file.
    public init(writer: any DatabaseWriter, configuration: Configuration = .init()) {
        self.writer = writer
        self.configuration = configuration
        self.path = writer.path
        self.commits = SQLiteCommitSignals.signal(for: writer.path)
        self.changeWatcher = SQLiteChangeWatcher(writer: writer)
    }

    // MARK: - Enqueue

    /// Adds a message to the outbox inside the caller's transaction.
    ///
    /// Call it from `writer.write { db in … }` (or any GRDB transaction): if the transaction rolls
    /// back, the message was never there. The current trace context is added to its headers.
    ///
    /// - Throws: ``OutboxError`` with code `.invalidMessage` for a message that breaks the limits,
    ///   `.schemaMismatch` when `migrate()` has not run.
    public func enqueue(_ message: OutboxMessage, in db: Database) throws {
        try enqueue(CollectionOfOne(message), in: db)
    }

    /// Adds several messages inside the caller's transaction, in order.
    public func enqueue(_ messages: some Sequence<OutboxMessage>, in db: Database) throws {
        guard db.isInsideTransaction else {
            throw OutboxError(code: .invalidConfiguration, operation: "enqueue",
                              message: "enqueue must run inside a transaction (writer.write { db in … }), or the message would not be atomic with your data.")
        }
        do {
            let partitionCount = try self.partitionCount(db)
            let statement = try db.cachedStatement(sql: """
                INSERT INTO outbox_messages
                    (id, topic, message_key, message_type, payload, headers, partition, created_at, available_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """)
            var count = 0
            for original in messages {
                try original.validate(limits: configuration.messageLimits)
                let message = original.capturingTraceContext()
                let created = SQLiteTime.microseconds(message.createdAt)
                try statement.execute(arguments: [
                    OutboxUUIDText.string(message.id), message.topic, message.key, message.type,
                    Data(message.payload), Data(OutboxHeaderCoding.encode(message.headers)),
                    OutboxPartitioning.partition(key: message.key, id: message.id, partitionCount: partitionCount),
                    created, OutboxStoreSupport.dueAtOnceMicroseconds,
                ])
                count += 1
            }
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

    private func partitionCount(_ db: Database) throws -> Int {
        if let cached = partitionCountCache.withLock({ $0 }) { return cached }
        let count = try Int.fetchOne(db, sql: "SELECT count(*) FROM outbox_leases") ?? 0
        guard count > 0 else {
            throw OutboxError(code: .schemaMismatch, operation: "enqueue",
                              message: "The outbox in \(path) has no partitions; run `outbox migrate` first.")
        }
        partitionCountCache.withLock { $0 = count }
        return count
    }

    // MARK: - OutboxStore

    public func migrate() async throws {
        guard configuration.partitionCount > 0 && configuration.partitionCount <= 4096 else {
            throw OutboxError(code: .invalidConfiguration, operation: "migrate", message: "The partition count must be between 1 and 4096.")
        }
        try await perform("migrate") { [writer, configuration] in
            try SQLiteSchema.migrator(partitionCount: configuration.partitionCount).migrate(writer)
        }
    }

    public func heartbeat(_ request: OutboxHeartbeat) async throws -> OutboxLeaseGrant {
        try await write("heartbeat") { db in
            let leases = try Row.fetchAll(db, sql: "SELECT partition, owner, expires_at FROM outbox_leases ORDER BY partition").map {
                OutboxLeasePlanner.Lease(partition: $0["partition"], owner: $0["owner"], expiresAt: SQLiteTime.date($0["expires_at"]))
            }
            let registrations = try Row.fetchAll(db, sql: "SELECT relay_id, expires_at, instance FROM outbox_relays").map {
                OutboxLeasePlanner.Registration(relayID: $0["relay_id"], expiresAt: SQLiteTime.date($0["expires_at"]), instanceID: $0["instance"])
            }
            let plan = OutboxLeasePlanner.plan(request, leases: leases, registrations: registrations)
            let update = try db.cachedStatement(sql: "UPDATE outbox_leases SET owner = ?, expires_at = ? WHERE partition = ?")
            for lease in plan.changedLeases {
                try update.execute(arguments: [lease.owner, SQLiteTime.microseconds(lease.expiresAt), lease.partition])
            }
            if !plan.grant.relayIDInUse {
                try db.execute(sql: """
                    INSERT INTO outbox_relays (relay_id, expires_at, in_flight, instance) VALUES (?, ?, ?, ?)
                    ON CONFLICT (relay_id) DO UPDATE SET expires_at = excluded.expires_at, in_flight = excluded.in_flight,
                                                         instance = excluded.instance
                    """, arguments: [request.relayID, SQLiteTime.microseconds(plan.registration.expiresAt), request.inFlight,
                                    plan.registration.instanceID])
            }
            for relay in plan.lapsedRelays {
                try db.execute(sql: "DELETE FROM outbox_relays WHERE relay_id = ?", arguments: [relay])
            }
            return plan.grant
        }
    }

    public func resign(relayID: String) async throws {
        try await write("resign") { db in
            try db.execute(sql: "UPDATE outbox_leases SET owner = NULL, expires_at = 0 WHERE owner = ?", arguments: [relayID])
            try db.execute(sql: "DELETE FROM outbox_relays WHERE relay_id = ?", arguments: [relayID])
        }
    }

    public func claim(partitions: [Int], limit: Int, maximumBytes: Int, now: Date, excluding: [Int64]) async throws -> [OutboxRecord] {
        guard !partitions.isEmpty, limit > 0 else { return [] }
        let list = "[" + partitions.map(String.init).joined(separator: ",") + "]"
        let skipped = "[" + excluding.map(String.init).joined(separator: ",") + "]"
        return try await read("claim") { db in
            // The scan walks pending rows in commit order through the partial index; the NOT EXISTS
            // probe only touches rows waiting for a retry (a second, small partial index).
            let rows = try Row.fetchCursor(db, sql: Self.claimSQL,
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
            let owned = try Set(Int.fetchAll(db, sql: Self.ownedPartitionsSQL,
                                             arguments: [acknowledgement.relayID]))
            var applied = 0
            var fenced = 0
            let now = SQLiteTime.microseconds(acknowledgement.now)
            let deliver = acknowledgement.retainDelivered
                ? try db.cachedStatement(sql: Self.markDeliveredSQL)
                : try db.cachedStatement(sql: Self.deleteDeliveredSQL)
            for reference in acknowledgement.delivered {
                guard owned.contains(reference.partition) else { fenced += 1; continue }
                try deliver.execute(arguments: acknowledgement.retainDelivered ? [now, reference.sequence] : [reference.sequence])
                applied += db.changesCount
            }
            let retry = try db.cachedStatement(sql: Self.rescheduleSQL)
            for item in acknowledgement.retries {
                guard owned.contains(item.partition) else { fenced += 1; continue }
                try retry.execute(arguments: [SQLiteTime.microseconds(item.availableAt), item.error, item.sequence])
                applied += db.changesCount
            }
            let bury = try db.cachedStatement(sql: Self.deadLetterSQL)
            for item in acknowledgement.deadLetters {
                guard owned.contains(item.partition) else { fenced += 1; continue }
                try bury.execute(arguments: [item.error, now, item.sequence])
                applied += db.changesCount
            }
            return OutboxAcknowledgementResult(applied: applied, fenced: fenced)
        }
    }

    public func waitForNewMessages(timeout: Duration) async {
        guard let changeWatcher else {
            await wakeUpCursor.wait(on: commits, timeout: timeout)
            return
        }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.wakeUpCursor.wait(on: self.commits, timeout: timeout) }
            group.addTask {
                await changeWatcher.waitForChange(checkEvery: self.configuration.changeCheckInterval, timeout: timeout)
            }
            await group.next()
            group.cancelAll()
        }
    }

    public func removeDelivered(finishedBefore cutoff: Date, limit: Int) async throws -> Int {
        try await write("remove delivered") { db in
            try db.execute(sql: Self.removeDeliveredSQL, arguments: [SQLiteTime.microseconds(cutoff), limit])
            return db.changesCount
        }
    }

    public func status(now: Date) async throws -> OutboxStatus {
        try await read("status") { db in
            let counts = try Row.fetchOne(db, sql: """
                SELECT count(*) FILTER (WHERE state = 0) AS pending,
                       count(*) FILTER (WHERE state = 0 AND attempts > 0) AS retrying,
                       count(*) FILTER (WHERE state = 1) AS dead,
                       count(*) FILTER (WHERE state = 2) AS delivered,
                       min(created_at) FILTER (WHERE state = 0) AS oldest
                FROM outbox_messages
                """)!
            let partitionCount = try Int.fetchOne(db, sql: "SELECT count(*) FROM outbox_leases") ?? 0
            let microseconds = SQLiteTime.microseconds(now)
            var owners: [String: [Int]] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT partition, owner FROM outbox_leases WHERE owner IS NOT NULL ORDER BY partition") {
                owners[row["owner"], default: []].append(row["partition"])
            }
            let relays = try Row.fetchAll(db, sql: "SELECT relay_id, expires_at, in_flight FROM outbox_relays WHERE expires_at > ? ORDER BY relay_id",
                                          arguments: [microseconds]).map { row in
                OutboxRelayInfo(relayID: row["relay_id"], partitions: owners[row["relay_id"]] ?? [],
                                inFlight: row["in_flight"], expiresAt: SQLiteTime.date(row["expires_at"]))
            }
            let oldest: Int64? = counts["oldest"]
            return OutboxStatus(
                pending: counts["pending"], retrying: counts["retrying"], inFlight: relays.reduce(0) { $0 + $1.inFlight },
                dead: counts["dead"], deliveredRetained: counts["delivered"],
                oldestPendingAge: oldest.map { .microseconds(max(0, microseconds - $0)) },
                partitionCount: partitionCount, relays: relays)
        }
    }

    public func deadLetters(limit: Int, afterSequence: Int64?) async throws -> [OutboxDeadLetter] {
        try await read("list dead letters") { db in
            try Row.fetchAll(db, sql: Self.deadLettersSQL, arguments: [afterSequence ?? 0, limit]).map {
                OutboxDeadLetter(record: try Self.record($0), failedAt: SQLiteTime.date($0["finished_at"] ?? 0))
            }
        }
    }

    public func retryDeadLetters(sequences: [Int64], now: Date) async throws -> Int {
        let count = try await write("retry dead letters") { db in
            var count = 0
            let statement = try db.cachedStatement(sql: """
                UPDATE outbox_messages SET state = 0, attempts = 0, available_at = ?, finished_at = NULL
                WHERE sequence = ? AND state = 1
                """)
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
            let statement = try db.cachedStatement(sql: "DELETE FROM outbox_messages WHERE sequence = ? AND state = 1")
            for sequence in sequences {
                try statement.execute(arguments: [sequence])
                count += db.changesCount
            }
            return count
        }
    }

    // MARK: - Plumbing

    /// The claim: pending, due rows of the given partitions in commit order, except the relay's
    /// rows in flight and keys held back by a message waiting for its retry.
    ///
    /// The scan walks pending rows through the partial index `outbox_messages_pending`; the NOT
    /// EXISTS probe only touches rows waiting for a retry, through `outbox_messages_retrying`. Cost
    /// follows the batch size (and the number of rows waiting for a retry), not the backlog.
    static let claimSQL = """
                SELECT m.sequence, m.id, m.topic, m.message_key, m.message_type, m.payload, m.headers,
                       m.partition, m.created_at, m.attempts, m.last_error
                FROM outbox_messages AS m INDEXED BY outbox_messages_pending
                WHERE m.state = 0 AND m.available_at <= :now
                  AND m.partition IN (SELECT value FROM json_each(:partitions))
                  AND m.sequence NOT IN (SELECT value FROM json_each(:skipped))
                  AND NOT EXISTS (
                      SELECT 1 FROM outbox_messages AS e INDEXED BY outbox_messages_retrying
                      WHERE e.state = 0 AND e.attempts > 0 AND e.partition = m.partition
                        AND e.message_key = m.message_key AND e.sequence < m.sequence AND e.available_at > :now)
                ORDER BY m.sequence
                LIMIT :limit
        """

    static let deleteDeliveredSQL = "DELETE FROM outbox_messages WHERE sequence = ? AND state = 0"
    static let markDeliveredSQL = "UPDATE outbox_messages SET state = 2, finished_at = ? WHERE sequence = ? AND state = 0"
    static let rescheduleSQL = """
        UPDATE outbox_messages SET attempts = attempts + 1, available_at = ?, last_error = ?
        WHERE sequence = ? AND state = 0
        """
    static let deadLetterSQL = """
        UPDATE outbox_messages SET attempts = attempts + 1, state = 1, last_error = ?, finished_at = ?
        WHERE sequence = ? AND state = 0
        """
    static let deadLettersSQL = """
        SELECT sequence, id, topic, message_key, message_type, payload, headers, partition, created_at,
               attempts, last_error, finished_at
        FROM outbox_messages WHERE state = 1 AND sequence > ? ORDER BY sequence LIMIT ?
        """
    static let ownedPartitionsSQL = "SELECT partition FROM outbox_leases WHERE owner = ?"
    static let removeDeliveredSQL = """
        DELETE FROM outbox_messages WHERE sequence IN (
            SELECT sequence FROM outbox_messages WHERE state = 2 AND finished_at < ? ORDER BY finished_at LIMIT ?)
        """

    /// The relay's hot queries with sample arguments, for plan checks in tests.
    static var relayQueries: [(text: String, arguments: StatementArguments)] {
        [
            (claimSQL, ["now": 0, "partitions": "[0,1]", "skipped": "[1,2]", "limit": 10]),
            (deleteDeliveredSQL, [1]),
            (markDeliveredSQL, [1, 1]),
            (rescheduleSQL, [1, "x", 1]),
            (deadLetterSQL, ["x", 1, 1]),
            (ownedPartitionsSQL, ["relay"]),
            (removeDeliveredSQL, [1, 10]),
            (deadLettersSQL, [0, 10]),
        ]
    }

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
    private func write<T: Sendable>(_ operation: String, _ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
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

    private func read<T: Sendable>(_ operation: String, _ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await perform(operation) { [writer] in try await writer.read(body) }
    }

    private func perform<T: Sendable>(_ operation: String, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch {
            throw SQLiteErrors.map(error, operation: operation, path: path)
        }
    }
}
