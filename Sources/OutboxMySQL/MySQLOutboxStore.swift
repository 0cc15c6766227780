import Foundation
public import Logging
public import Outbox

import Synchronization

/// The MySQL/MariaDB outbox store, over libmariadb.
///
/// Built on the application's own connection pool, and enqueued on the application's
/// connection, inside its transaction:
///
/// ```swift
/// let store = try MySQLOutboxStore(pool: pool, logger: logger)
/// try await pool.withTransaction { connection in
///     try await connection.query("INSERT INTO orders (id, total) VALUES (?, ?)", [.text(id), .integer(total)])
///     try await store.enqueue(message, in: connection)
/// }
/// ```
///
/// The store's own transactions (heartbeats, claims, acknowledgements) run at READ COMMITTED:
/// under InnoDB's default REPEATABLE READ, the gap locks of a relay's locking reads blocked the
/// application's INSERTs until the lock-wait timeout. On a pool whose sessions are READ COMMITTED
/// already (`MySQLConnectionPool(…, isolation: .readCommitted)`) that costs nothing; otherwise
/// one `SET TRANSACTION` statement per store transaction.
///
/// Privileges: `SELECT`, `INSERT`, `UPDATE`, `DELETE` and `EXECUTE` (the usual heartbeat is one
/// call of the schema's stored procedure `<prefix>_renew`); ``migrate()`` also needs `CREATE`,
/// `ALTER`, `INDEX` and `CREATE ROUTINE`.
///
/// Commit order: sequences are handed out at insert, but transactions commit in another order. An
/// enqueueing transaction first takes a shared lock on one row per partition it writes to (the
/// commit-guard table); a claim takes those rows exclusively with `SKIP LOCKED`, so it reads only
/// partitions where no enqueueing transaction is open, and a long transaction holds back only its
/// own partitions. Per partition, and so per key, publish order is sequence order.
///
/// Wake-up: an enqueue through ``enqueue(_:in:)-([OutboxMessage],_)`` inside ``MySQLConnection/withTransaction(isolation:_:)``
/// wakes relays in the same process at commit; other processes are noticed by adaptive polling of
/// the highest sequence, every ``Configuration/minimumPollInterval`` while messages flow, backing
/// off to ``Configuration/maximumPollInterval`` when idle. A claim that finds messages counts as
/// activity, so the first commit after a quiet spell (found by the relay's own poll, within its
/// poll interval) brings the probe back to full speed.
public final class MySQLOutboxStore: OutboxStore, OutboxKitStore, Sendable {
    /// Settings of the MySQL store; see ``OutboxStoreConfiguration``. It uses `tablePrefix`,
    /// `partitionCount`, `messageLimits` (topic, key and type of at most 1,024 bytes here) and the
    /// poll intervals.
    public typealias Configuration = OutboxStoreConfiguration

    /// The widest topic, key and type the schema's columns hold.
    static let maximumTextColumnBytes = 1024

    let pool: MySQLConnectionPool
    let names: MySQLOutboxNames
    package let kit: OutboxStoreKit
    let wakeUp: OutboxPolledWakeUp
    /// The highest sequence: an index end lookup, and it moves with every insert.
    let pollQuery: String
    /// Whether the last claim returned nothing: the next one first asks whether there is anything
    /// to claim at all (see `claim`).
    let lastClaimFoundNothing = Atomic<Bool>(false)

    /// Creates the store on the application's connection pool, which it shares (it opens none of
    /// its own; close the pool when the application stops).
    ///
    /// - Throws: ``OutboxError`` with code `.invalidConfiguration` for an invalid prefix or limits
    ///   the columns cannot hold.
    public init(pool: MySQLConnectionPool, configuration: Configuration = .init(), logger: Logger) throws {
        let names = try MySQLOutboxNames.mysql(tablePrefix: configuration.tablePrefix)
        let limits = configuration.messageLimits
        guard max(limits.maximumTopicBytes, limits.maximumKeyBytes, limits.maximumTypeBytes) <= Self.maximumTextColumnBytes else {
            throw OutboxError(code: .invalidConfiguration, operation: "configure MySQL store",
                              message: "The MySQL store holds topics, keys and types of at most \(Self.maximumTextColumnBytes) bytes; lower the message limits.")
        }
        self.names = names
        kit = OutboxStoreKit(store: "MySQL", configuration: configuration, logger: logger, map: MySQLStoreErrors.map)
        self.pool = pool
        pollQuery = "SELECT COALESCE(MAX(sequence), 0) FROM \(names.messages)"
        wakeUp = OutboxPolledWakeUp(configuration)
    }

    /// Runs `body` in a store transaction on the shared pool, at READ COMMITTED.
    func transaction<T: Sendable>(_ body: (MySQLConnection) async throws -> T) async throws -> T {
        try await pool.withTransaction(isolation: pool.isolation == .readCommitted ? nil : .readCommitted, body)
    }

    // MARK: - Enqueue

    /// Adds a message to the outbox on the application's connection, inside its transaction.
    ///
    /// See ``enqueue(_:in:)-([OutboxMessage],_)``.
    public func enqueue(_ message: OutboxMessage, in connection: MySQLConnection) async throws {
        try await enqueue([message], in: connection)
    }

    /// Adds messages to the outbox on the application's connection, inside its transaction, in order.
    ///
    /// Call it inside ``MySQLConnection/withTransaction(isolation:_:)``: if the transaction rolls
    /// back, the messages were never there; relays in this process wake at commit. Costs two round
    /// trips for up to 256 messages of ordinary size.
    ///
    /// - Throws: ``OutboxError`` with code `.invalidMessage` for a message that breaks the limits
    ///   or the server's `max_allowed_packet`, or whose id is already pending; `.schemaMismatch`
    ///   when `migrate()` has not run.
    public func enqueue(_ messages: [OutboxMessage], in connection: MySQLConnection) async throws {
        // Outside a transaction each statement would commit alone: a batch could be half written,
        // and the message would not be atomic with the application's data.
        guard connection.isInTransaction else {
            throw OutboxError(code: .invalidConfiguration, operation: "enqueue",
                              message: "enqueue must run inside a transaction (connection.withTransaction { connection in … }), or the messages would not be atomic with your data.")
        }
        guard !messages.isEmpty else { return }
        try await perform("enqueue") {
            let partitionCount = try await self.partitionCount(connection)
            let prepared = try OutboxPreparedMessage.prepare(messages, limits: configuration.messageLimits, partitionCount: partitionCount)
            let packetLimit = try await connection.maximumPacketBytes()
            var rows: [(values: [MySQLValue], bytes: Int)] = []
            var partitions: Set<Int> = []
            for item in prepared {
                let (message, partition, headers) = (item.message, item.partition, item.encodedHeaders)
                partitions.insert(partition)
                let created = MySQLTime.microseconds(message.createdAt)
                let values: [MySQLValue] = [
                    .bytes(message.id.bytes), .bytes(Array(message.topic.utf8)), message.key.map { .bytes(Array($0.utf8)) } ?? .null,
                    message.type.map { .bytes(Array($0.utf8)) } ?? .null, .bytes(message.payload), .bytes(headers),
                    .int(partition), .integer(created), .integer(OutboxStoreSupport.dueAtOnceMicroseconds),
                ]
                let bytes = message.payload.count + headers.count + message.topic.utf8.count + (message.key?.utf8.count ?? 0)
                    + (message.type?.utf8.count ?? 0) + 128
                // Checked here, because a packet over the limit makes the server drop the
                // connection, and the application's transaction with it.
                guard bytes <= packetLimit - 1024 else {
                    throw OutboxError(code: .invalidMessage, operation: "enqueue",
                                      message: "The message (\(bytes) bytes) is larger than the MySQL server's max_allowed_packet (\(packetLimit) bytes); send a smaller payload or raise max_allowed_packet.")
                }
                rows.append((values, bytes))
            }
            // The shared locks come before the sequence numbers: see "Commit order" above.
            if partitions.count == 1, let partition = partitions.first {
                // One partition (one message, or one key's): the lock and the insert are one
                // statement, one round trip fewer.
                for chunk in Self.chunks(rows, packetLimit: packetLimit) {
                    try await insertLockingGuard(chunk.map(\.values), partition: partition, in: connection)
                }
            } else {
                let guarded = partitions.sorted().map { MySQLValue.int($0) }
                try await connection.query(
                    "SELECT COUNT(*) FROM \(names.commitGuard) WHERE partition_no IN \(MySQLValueList.placeholders(guarded.count)) LOCK IN SHARE MODE",
                    MySQLValueList.padded(guarded))
                for chunk in Self.chunks(rows, packetLimit: packetLimit) {
                    let tuple = "(?, ?, ?, ?, ?, ?, ?, ?, ?)"
                    try await connection.query("""
                        INSERT INTO \(names.messages) (\(Self.insertedColumns))
                        VALUES \(Array(repeating: tuple, count: chunk.count).joined(separator: ", "))
                        """, chunk.flatMap(\.values))
                }
            }
        }
        let wakeUp = self.wakeUp
        _ = connection.afterCommit { wakeUp.committed() }
    }

    /// The columns an enqueue writes, in the order of its values.
    static let insertedColumnNames = ["id", "topic", "message_key", "message_type", "payload", "headers", "partition_no", "created_at", "available_at"]
    static let insertedColumns = insertedColumnNames.joined(separator: ", ")

    /// Inserts rows of one partition with `INSERT … SELECT` from that partition's commit-guard row
    /// `LOCK IN SHARE MODE`: the shared lock is taken before any sequence number is handed out,
    /// as the separate locking read does. The guard row is read by its primary key (a constant
    /// table to the optimizer), so it is locked before the first row is inserted, and no other
    /// partition's row is locked; `ORDER BY` keeps the rows' sequence in the messages' order.
    private func insertLockingGuard(_ rows: [[MySQLValue]], partition: Int, in connection: MySQLConnection) async throws {
        let columns = Self.insertedColumnNames
        let sql: String
        if rows.count == 1 {
            // The common case, without a derived table (which the server would materialise).
            sql = """
                INSERT INTO \(names.messages) (\(Self.insertedColumns))
                SELECT \(Array(repeating: "?", count: columns.count).joined(separator: ", "))
                FROM \(names.commitGuard) WHERE partition_no = ? LOCK IN SHARE MODE
                """
        } else {
            let firstRow = "SELECT " + columns.map { "? AS \($0)" }.joined(separator: ", ") + ", 0 AS row_no"
            let otherRows = (1..<rows.count).map { "SELECT " + Array(repeating: "?", count: columns.count).joined(separator: ", ") + ", \($0)" }
            sql = """
                INSERT INTO \(names.messages) (\(Self.insertedColumns))
                SELECT \(columns.map { "v.\($0)" }.joined(separator: ", "))
                FROM \(names.commitGuard) AS g JOIN (\(([firstRow] + otherRows).joined(separator: " UNION ALL "))) AS v
                WHERE g.partition_no = ? ORDER BY v.row_no LOCK IN SHARE MODE
                """
        }
        let result = try await connection.query(sql, rows.flatMap { $0 } + [.int(partition)])
        // No guard row (a partition count the schema does not have) would insert nothing, silently.
        guard result.affectedRows == rows.count else {
            throw OutboxError(code: .invalidConfiguration, operation: "enqueue",
                              message: "Partition \(partition) has no commit-guard row, so the message was not written; run `outbox migrate` for this outbox.")
        }
    }

    /// Splits rows into statements of 256, 64, 16, 4 or 1 rows (few distinct prepared
    /// statements), each well under the packet limit.
    static func chunks(_ rows: [(values: [MySQLValue], bytes: Int)], packetLimit: Int) -> [[(values: [MySQLValue], bytes: Int)]] {
        var chunks: [[(values: [MySQLValue], bytes: Int)]] = []
        var start = 0
        while start < rows.count {
            var size = 256
            while size > 1 && (start + size > rows.count || rows[start..<(start + size)].reduce(0, { $0 + $1.bytes }) > packetLimit / 2) {
                size /= 4
            }
            chunks.append(Array(rows[start..<(start + size)]))
            start += size
        }
        return chunks
    }

    func partitionCount(_ connection: MySQLConnection) async throws -> Int {
        try await kit.partitionCounts.value {
            Int(try await connection.query("SELECT COUNT(*) FROM \(names.leases)").rows.first?[0].int64 ?? 0)
        }
    }

    /// Drops the outbox's tables and procedure, its inbox's too: for throw-away outboxes (tests,
    /// `outbox bench`), never for one holding a user's messages.
    package func dropSchema() async throws {
        try await MySQLSchema.drop(names: names, on: pool)
    }

    // MARK: - Wake-up

    /// Queries the wake-up poller has made so far (it polls only while no notification path works).
    public var pollQueries: Int { wakeUp.probeCount }

    public func waitForNewMessages(timeout: Duration) async {
        await wakeUp.wait(timeout: timeout) { try? await self.pool.query(self.pollQuery).rows.first?[0].int64 }
    }

    /// Runs `body`, turning MySQL errors into ``OutboxError``s that name what to fix and contain
    /// no bound values.
    func perform<T>(_ operation: String, _ body: () async throws -> T) async throws -> T {
        try await kit.perform(operation, body)
    }
}

extension UUID {
    /// The 16 bytes of the UUID, in order.
    var bytes: [UInt8] {
        withUnsafeBytes(of: uuid) { Array($0) }
    }

    init?(bytes: [UInt8]) {
        guard bytes.count == 16 else { return nil }
        self = bytes.withUnsafeBytes { raw in UUID(uuid: raw.loadUnaligned(as: uuid_t.self)) }
    }
}
