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
    /// ``withTransaction(logger:file:line:isolation:_:)`` an enqueue is one round trip.
    ///
    /// Outside a transaction it throws (code `.invalidConfiguration`) and writes nothing.
    ///
    /// - Throws: ``OutboxError`` with code `.invalidMessage` for a message that breaks the limits;
    ///   `.schemaMismatch` when `migrate()` has not run.
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
            if prepared.count == 1, let item = prepared.first {
                // One message (most transactions): the function of version 8, one argument per column.
                let message = item.message
                try await connection.query("""
                    SELECT \(unescaped: names.enqueueOneFunction)(\(names.channel), \(names.lockSpace), \(Int32(item.partition)),
                        \(message.id), \(message.topic), \(message.key), \(message.type), \(ByteBuffer(bytes: message.payload)),
                        \(ByteBuffer(bytes: item.encodedHeaders)), \(message.createdAt))
                    """, logger: logger)
                return
            }
            let partitions = prepared.map(\.partition)
            let distinct = Array(Set(partitions)).sorted().map(Int32.init)
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
            let partitionValues = partitions.map(Int32.init)
            // One call of the schema's enqueue function (version 6): it takes the shared locks of
            // the partitions before the insert draws the first sequence (see "Commit order"
            // above), notifies the relays, and inserts in the caller's order.
            try await connection.query("""
                SELECT \(unescaped: names.enqueueFunction)(\(names.channel), \(names.lockSpace), \(distinct),
                    \(ids), \(topics), \(keys), \(hasKeys), \(types), \(hasTypes), \(payloads), \(headers), \(partitionValues),
                    \(created))
                """, logger: logger)
        }
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
