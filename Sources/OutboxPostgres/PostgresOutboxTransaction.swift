public import Logging
public import Outbox
public import PostgresNIO

/// A transaction the store opened on a connection of the application's client: the application's
/// statements on ``connection`` and the messages enqueued here commit or roll back together.
///
/// ```swift
/// try await store.withTransaction(logger: logger) { transaction in
///     try await transaction.connection.query("INSERT INTO orders (id, total) VALUES (\(id), \(total))", logger: logger)
///     try await transaction.enqueue(message)
/// }
/// ```
///
/// An enqueue here is one round trip. ``PostgresOutboxStore/enqueue(_:in:)-([OutboxMessage],_)`` on a
/// connection of the application's own `withTransaction` costs two: postgres-nio does not say whether
/// a connection is inside a transaction block, so the store must ask the server first, while here the
/// store began the transaction itself. Do not end it early with your own `COMMIT` or `ROLLBACK`.
public struct PostgresOutboxTransaction: Sendable {
    /// The transaction's connection, for the application's own statements.
    public let connection: PostgresConnection
    let store: PostgresOutboxStore

    /// Adds a message to the outbox in this transaction.
    ///
    /// - Throws: ``OutboxError`` with code `.invalidMessage` for a message that breaks the limits
    ///   or whose id is already in the outbox; `.schemaMismatch` when `migrate()` has not run.
    public func enqueue(_ message: OutboxMessage) async throws {
        try await store.enqueue([message], in: connection, knownInTransaction: true)
    }

    /// Adds messages to the outbox in this transaction, in order: one round trip whatever their number.
    ///
    /// - Throws: ``OutboxError`` with code `.invalidMessage` for a message that breaks the limits
    ///   or whose id is already in the outbox; `.schemaMismatch` when `migrate()` has not run.
    public func enqueue(_ messages: [OutboxMessage]) async throws {
        try await store.enqueue(messages, in: connection, knownInTransaction: true)
    }
}

extension PostgresOutboxStore {
    /// Runs `body` in a transaction on a connection of the store's client (`BEGIN`, then `COMMIT`,
    /// or `ROLLBACK` when `body` throws), as the client's own `withTransaction` does, with the same
    /// errors; but messages enqueued through the ``PostgresOutboxTransaction`` cost one round trip
    /// instead of two.
    public func withTransaction<Result>(
        logger: Logger,
        file: String = #file,
        line: Int = #line,
        isolation: isolated (any Actor)? = #isolation,
        _ body: (PostgresOutboxTransaction) async throws -> sending Result
    ) async throws -> sending Result {
        try await client.withTransaction(logger: logger, file: file, line: line, isolation: isolation) { connection in
            try await body(PostgresOutboxTransaction(connection: connection, store: self))
        }
    }
}
