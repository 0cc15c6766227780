import Foundation
public import Logging
public import Outbox
public import PostgresNIO
import ServiceLifecycle
import Synchronization

/// The PostgreSQL outbox store, on postgres-nio.
///
/// Built on the application's own `PostgresClient`, and enqueued on the application's
/// connection, inside its transaction:
///
/// ```swift
/// let store = try PostgresOutboxStore(client: client, logger: logger)
/// try await store.withTransaction(logger: logger) { transaction in
///     try await transaction.connection.query("INSERT INTO orders (id, total) VALUES (\(id), \(total))", logger: logger)
///     try await transaction.enqueue(message)
/// }
/// ```
///
/// ``enqueue(_:in:)-([OutboxMessage],_)`` on a connection of the client's own `withTransaction`
/// works as well, at one round trip more per enqueue (see ``PostgresOutboxTransaction``).
///
/// Commit order: sequences are handed out at insert, but transactions commit in another order. An
/// enqueueing transaction holds a shared advisory lock on each partition it writes to (taken
/// before its sequence numbers); a relay claims a partition only after taking that lock
/// exclusively, which succeeds only when no transaction that may still commit rows into it is
/// open. So no row with a smaller sequence can appear in a partition after the relay read it: per
/// partition, and so per key, publish order is sequence order, and a long transaction holds back
/// only its own partitions.
///
/// Wake-up: `pg_notify` inside the enqueue transaction (delivered at commit) and a listening
/// connection, leased from the client's pool for as long as ``PostgresOutboxStore/run()`` runs;
/// add the store to your `ServiceGroup` after the client. Without it relays poll.
public final class PostgresOutboxStore: OutboxStore, OutboxKitStore, Sendable {
    /// Settings of the PostgreSQL store; see ``OutboxStoreConfiguration``. It uses `schema`
    /// (default `public`), `tablePrefix`, `partitionCount`, `messageLimits`, `pushWakeUps` (LISTEN)
    /// and `reconnectDelay`.
    public typealias Configuration = OutboxStoreConfiguration

    let client: PostgresClient
    let names: PostgresOutboxNames
    package let kit: OutboxStoreKit
    let notifications = OutboxSignal()
    /// The enqueue's two statements, kept prepared on each connection (see `PostgresPreparedText`).
    let enqueueOne: PostgresPreparedText
    let enqueueMany: PostgresPreparedText
    let listening = Atomic<Bool>(false)

    /// Whether the notification listener is connected; while it is not, relays poll.
    public var isWakeUpConnected: Bool { listening.load(ordering: .acquiring) }
    /// A notification that arrives between two waits wakes the next one at once.
    let wakeUpCursor = OutboxSignalCursor()

    /// Creates the store on the client the application runs for its own transactions
    /// (`PostgresClient` is a `Service`: run it in the same `ServiceGroup`, before the store).
    ///
    /// - Throws: ``OutboxError`` with code `.invalidConfiguration` for an invalid schema or prefix.
    public init(client: PostgresClient, configuration: Configuration = .init(), logger: Logger) throws {
        self.client = client
        self.names = try PostgresOutboxNames(schema: configuration.schema ?? "public", tablePrefix: configuration.tablePrefix)
        kit = OutboxStoreKit(store: "PostgreSQL", configuration: configuration, logger: logger, map: PostgresErrors.map)
        enqueueOne = Self.enqueueOneStatement(names)
        enqueueMany = Self.enqueueManyStatement(names)
    }

    // MARK: - Enqueue

    /// Adds a message to the outbox on the application's connection, inside its transaction.
    ///
    /// See ``enqueue(_:in:)-([OutboxMessage],_)``.
    public func enqueue(_ message: OutboxMessage, in connection: PostgresConnection) async throws {
        try await enqueue([message], in: connection)
    }

    /// Adds messages to the outbox on the application's connection, inside its transaction, in order.
    ///
    /// Call it inside `withTransaction`: if the transaction rolls back, the messages were never
    /// there. The relay is notified at commit. Costs two round trips whatever the number of
    /// messages: a check that a transaction is open, and the insert. In the store's own
    /// ``withTransaction(logger:file:line:isolation:_:)`` an enqueue is one round trip. The first
    /// enqueue on a connection costs one more, preparing the statement there.
    ///
    /// Outside a transaction it throws (code `.invalidConfiguration`) and writes nothing.
    ///
    /// - Throws: ``OutboxError`` with code `.invalidMessage` for a message that breaks the limits
    ///   or whose id is already in the outbox; `.schemaMismatch` when `migrate()` has not run.
    public func enqueue(_ messages: [OutboxMessage], in connection: PostgresConnection) async throws {
        try await enqueue(messages, in: connection, knownInTransaction: false)
    }

    func enqueue(_ messages: [OutboxMessage], in connection: PostgresConnection, knownInTransaction: Bool) async throws {
        guard !messages.isEmpty else { return }
        try await perform("enqueue") {
            // Outside a transaction block the insert would commit alone, not with the application's
            // data. postgres-nio does not tell whether the connection is in one, and no single
            // statement can both check and insert (inside a function LOCK TABLE does not check),
            // so this costs a round trip: LOCK TABLE fails outside a transaction block (SQLSTATE
            // 25P01), and inside one its ACCESS SHARE lock on the small leases table conflicts
            // only with DDL. Unlike a SAVEPOINT it opens no subtransaction, which would slow every
            // transaction with many enqueues. A transaction the store began needs no check.
            if !knownInTransaction {
                try await connection.query("LOCK TABLE \(unescaped: names.leases) IN ACCESS SHARE MODE", logger: logger)
            }
            let partitionCount = try await self.partitionCount(connection)
            let prepared = try OutboxPreparedMessage.prepare(messages, limits: configuration.messageLimits, partitionCount: partitionCount)
            var bindings = PostgresBindings(capacity: 13)
            bindings.append(names.channel)
            bindings.append(names.lockSpace)
            if prepared.count == 1, let item = prepared.first {
                // One message (most transactions): one row, one argument per column.
                let message = item.message
                bindings.append(Int32(item.partition))
                bindings.append(message.id)
                bindings.append(message.topic)
                bindings.append(message.key)
                bindings.append(message.type)
                bindings.append(ByteBuffer(bytes: message.payload))
                bindings.append(ByteBuffer(bytes: item.encodedHeaders))
                bindings.append(message.createdAt)
                try await enqueueOne.execute(bindings, on: connection, logger: logger)
                return
            }
            let partitions = prepared.map(\.partition)
            var ids: [UUID] = [], topics: [String] = [], keys: [String] = [], hasKeys: [Bool] = []
            var types: [String] = [], hasTypes: [Bool] = [], payloads: [ByteBuffer] = [], headers: [ByteBuffer] = []
            var created: [Date] = []
            for item in prepared {
                let message = item.message
                ids.append(message.id)
                topics.append(message.topic)
                keys.append(message.key ?? "")
                hasKeys.append(message.key != nil)
                types.append(message.type ?? "")
                hasTypes.append(message.type != nil)
                payloads.append(ByteBuffer(bytes: message.payload))
                headers.append(ByteBuffer(bytes: item.encodedHeaders))
                created.append(message.createdAt)
            }
            bindings.append(Array(Set(partitions)).sorted().map(Int32.init))
            bindings.append(ids)
            bindings.append(topics)
            bindings.append(keys)
            bindings.append(hasKeys)
            bindings.append(types)
            bindings.append(hasTypes)
            bindings.append(payloads)
            bindings.append(headers)
            bindings.append(partitions.map(Int32.init))
            bindings.append(created)
            try await enqueueMany.execute(bindings, on: connection, logger: logger)
        }
    }

    /// The enqueue of one message as one statement: the materialised CTE takes the shared lock
    /// of the message's partition and queues the notification before the insert's row, and so
    /// its sequence, is made (see "Commit order" above). Prepared, it is parsed and planned once
    /// per connection; measured with `pgbench` on prepared statements it costs less than a call of
    /// `<prefix>_enqueue_one` (schema version 8), which earlier builds call.
    static func enqueueOneStatement(_ names: PostgresOutboxNames) -> PostgresPreparedText {
        PostgresPreparedText(sql: """
            WITH guard AS MATERIALIZED (SELECT pg_advisory_xact_lock_shared($2, $3), pg_notify($1, ''))
            INSERT INTO \(names.messages)
                (id, topic, message_key, message_type, payload, headers, partition, created_at, available_at)
            SELECT $4, $5, $6, $7, $8, $9, $3, $10, 'epoch'::timestamptz FROM guard
            """, dataTypes: [.text, .int4, .int4, .uuid, .text, .text, .text, .bytea, .bytea, .timestamptz])
    }

    /// The enqueue of several messages: a call of the schema's enqueue function (version 6), which
    /// takes the shared locks of the partitions before the insert draws the first sequence,
    /// notifies the relays, and inserts in the caller's order.
    static func enqueueManyStatement(_ names: PostgresOutboxNames) -> PostgresPreparedText {
        PostgresPreparedText(
            sql: "SELECT \(names.enqueueFunction)($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            dataTypes: [.text, .int4, .int4Array, .uuidArray, .textArray, .textArray, .boolArray, .textArray, .boolArray,
                        .byteaArray, .byteaArray, .int4Array, .timestamptzArray])
    }

    func partitionCount(_ connection: PostgresConnection) async throws -> Int {
        try await kit.partitionCounts.value {
            let rows = try await connection.query("SELECT count(*)::int FROM \(unescaped: names.leases)", logger: logger)
            var count = 0
            for try await value in rows.decode(Int.self) { count = value }
            return count
        }
    }

    /// Runs `body`, turning PostgreSQL errors into ``OutboxError``s that name what to fix and
    /// contain no bound values.
    func perform<T>(_ operation: String, _ body: () async throws -> T) async throws -> T {
        try await kit.perform(operation, body)
    }
}
