import CMariaDB
import Outbox
import Foundation
import Synchronization

/// Transaction isolation levels, for ``MySQLConnection/withTransaction(isolation:_:)``.
public enum MySQLIsolationLevel: String, Sendable {
    /// `READ COMMITTED`: each statement sees what was committed before it started. The outbox
    /// store's own sessions use it (see ``MySQLOutboxStore``).
    case readCommitted = "READ COMMITTED"
    /// `REPEATABLE READ`: InnoDB's default.
    case repeatableRead = "REPEATABLE READ"
    /// `SERIALIZABLE`.
    case serializable = "SERIALIZABLE"
}

/// One connection to a MySQL or MariaDB server, over libmariadb.
///
/// Every statement is a server-side prepared statement with `?` placeholders; values are always
/// bound, never put into the SQL text. Prepared statements are cached per connection. Each
/// connection owns a dedicated thread for libmariadb's blocking calls, so awaiting a query never
/// blocks Swift's cooperative thread pool.
///
/// A connection runs one statement at a time: use it from one task at a time (the
/// ``MySQLConnectionPool`` hands each connection to one task).
public final class MySQLConnection: Sendable {
    private let worker: OutboxBlockingWorker
    private let session: MySQLSession
    /// Where the statements this connection sends are counted (its pool's counter, when pooled).
    private let statements: MySQLStatementCounter
    /// Work to run after the current ``withTransaction(isolation:_:)`` commits; `nil` outside one.
    private let commitHooks = Mutex<[@Sendable () -> Void]?>(nil)
    /// The server's `max_allowed_packet` once read.
    private let maximumPacket = Mutex<Int?>(nil)
    /// The settings the connection was opened with (the password included; never printed).
    public let configuration: MySQLConfiguration

    private init(worker: OutboxBlockingWorker, session: MySQLSession, configuration: MySQLConfiguration, statements: MySQLStatementCounter) {
        self.worker = worker
        self.session = session
        self.statements = statements
        self.configuration = configuration
    }

    /// Opens a connection with the utf8mb4 character set and `LOAD DATA LOCAL` disabled.
    ///
    /// - Throws: ``MySQLError`` (for example 1045 for a wrong password, 2002/2003 when no server
    ///   answers); its text never contains the password.
    public static func connect(_ configuration: MySQLConfiguration, isolation: MySQLIsolationLevel? = nil) async throws -> MySQLConnection {
        try await connect(configuration, isolation: isolation, statements: MySQLStatementCounter())
    }

    static func connect(_ configuration: MySQLConfiguration, isolation: MySQLIsolationLevel?,
                        statements: MySQLStatementCounter) async throws -> MySQLConnection {
        let worker = OutboxBlockingWorker(name: "outbox.mysql")
        do {
            let session = try await worker.run { try MySQLSession.open(configuration) }
            let connection = MySQLConnection(worker: worker, session: session, configuration: configuration, statements: statements)
            if let isolation {
                try await connection.execute("SET SESSION TRANSACTION ISOLATION LEVEL \(isolation.rawValue)", operation: "set isolation")
            }
            return connection
        } catch {
            worker.stop()
            throw error
        }
    }

    deinit {
        let session = self.session
        // Queued jobs run before the thread ends, so the socket is closed on its own thread.
        _ = worker.submit { session.close() }
        worker.stop()
    }

    /// Runs one statement with `values` bound to its `?` placeholders, in order, and reads all rows.
    ///
    /// - Throws: ``MySQLError``; after a lost connection (``MySQLError/isConnectionLost``) the
    ///   connection is unusable and ``isBroken`` is `true`.
    @discardableResult
    public func query(_ sql: String, _ values: [MySQLValue] = []) async throws -> MySQLResult {
        let session = self.session
        statements.count()
        return try await worker.run { try session.run(sql, values) }
    }

    /// Runs `body` in a transaction: commits when it returns, rolls back when it throws (and
    /// rethrows its error).
    ///
    /// - Parameters:
    ///   - isolation: the level for this transaction only; `nil` keeps the session's.
    ///   - callerIsolation: the caller's actor, where `body` runs (leave the default), so a body
    ///     that uses the caller's state needs no `Sendable` closure.
    public func withTransaction<T: Sendable>(
        isolation: MySQLIsolationLevel? = nil, callerIsolation: isolated (any Actor)? = #isolation,
        _ body: (MySQLConnection) async throws -> T
    ) async throws -> T {
        if let isolation {
            try await execute("SET TRANSACTION ISOLATION LEVEL \(isolation.rawValue)", operation: "begin")
        }
        try await execute("START TRANSACTION", operation: "begin")
        commitHooks.withLock { $0 = [] }
        let result: T
        do {
            result = try await body(self)
            try await execute("COMMIT", operation: "commit")
        } catch {
            commitHooks.withLock { $0 = nil }
            if !isBroken { try? await execute("ROLLBACK", operation: "rollback") }
            throw error
        }
        let hooks = commitHooks.withLock { hooks in
            defer { hooks = nil }
            return hooks ?? []
        }
        for hook in hooks { hook() }
        return result
    }

    /// Runs `hook` after the enclosing ``withTransaction(isolation:_:)`` commits (never after a
    /// rollback). Returns `false`, without keeping `hook`, when no such transaction is open.
    func afterCommit(_ hook: @escaping @Sendable () -> Void) -> Bool {
        commitHooks.withLock { hooks in
            guard hooks != nil else { return false }
            hooks!.append(hook)
            return true
        }
    }

    /// Whether a ``withTransaction(isolation:_:)`` is open on this connection.
    public var isInTransaction: Bool { commitHooks.withLock { $0 != nil } }

    /// Whether the connection was lost; a pool discards broken connections.
    public var isBroken: Bool { session.isBroken.load(ordering: .acquiring) }

    /// Closes the connection and ends its thread.
    public func close() async {
        let session = self.session
        _ = try? await worker.run { session.close() }
        worker.stop()
    }

    /// Runs a constant statement over the text protocol (transaction control, `SET`, DDL).
    /// Never pass values in `sql`: it is for text the library itself wrote.
    func execute(_ sql: String, operation: String) async throws {
        let session = self.session
        statements.count()
        try await worker.run { try session.executeText(sql, operation: operation) }
    }

    /// The server's `max_allowed_packet`, read once per connection.
    func maximumPacketBytes() async throws -> Int {
        // Kept here, not in the session: every enqueue asks, and a known number needs no hop to
        // the connection's thread.
        if let known = maximumPacket.withLock({ $0 }) { return known }
        let session = self.session
        let value = try await worker.run { try session.readMaximumPacketBytes() }
        maximumPacket.withLock { $0 = value }
        return value
    }
}

/// Counts statements sent to the server: what a store call costs in round trips, measured
/// (`outbox bench`'s idle scenario reports it for MySQL).
final class MySQLStatementCounter: Sendable {
    private let sent = Atomic<Int>(0)

    func count() { sent.add(1, ordering: .relaxed) }

    var total: Int { sent.load(ordering: .relaxed) }
}
