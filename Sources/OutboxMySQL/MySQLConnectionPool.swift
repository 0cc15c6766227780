import Foundation
import Synchronization

/// A pool of ``MySQLConnection``s to one server.
///
/// Connections open lazily, up to ``maximumConnections``; a task that finds none free waits for
/// one. A connection that lost its server is discarded and replaced by a new one on next use, so
/// a server restart costs the work in flight, not the pool.
///
/// ```swift
/// let pool = MySQLConnectionPool(configuration: try MySQLConfiguration(url: url))
/// try await pool.withTransaction { connection in
///     try await connection.query("INSERT INTO orders (id, total) VALUES (?, ?)", [.text(id), .integer(total)])
///     try await store.enqueue(message, in: connection)
/// }
/// ```
public final class MySQLConnectionPool: Sendable {
    private struct State {
        var idle: [MySQLConnection] = []
        var open = 0
        var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
        var nextWaiter: UInt64 = 0
        var isClosed = false
    }

    /// Where the connections go.
    public let configuration: MySQLConfiguration
    /// The most connections open at once.
    public let maximumConnections: Int
    /// The isolation level every connection's session starts with; `nil` keeps the server's.
    public let isolation: MySQLIsolationLevel?
    private let state = Mutex(State())
    private let statements = MySQLStatementCounter()

    /// How many statements this pool's connections have sent to the server, transaction control
    /// (`START TRANSACTION`, `COMMIT`) included.
    public var statementsSent: Int { statements.total }

    /// Creates a pool; nothing connects until the first use.
    public init(configuration: MySQLConfiguration, maximumConnections: Int = 8, isolation: MySQLIsolationLevel? = nil) {
        self.configuration = configuration
        self.maximumConnections = max(1, maximumConnections)
        self.isolation = isolation
    }

    /// Runs `body` with a connection of its own, then returns the connection to the pool.
    ///
    /// - Throws: what `body` throws, or ``MySQLError`` when no connection can be opened.
    public func withConnection<T: Sendable>(
        callerIsolation: isolated (any Actor)? = #isolation, _ body: (MySQLConnection) async throws -> T
    ) async throws -> T {
        let connection = try await checkOut()
        do {
            let result = try await body(connection)
            await checkIn(connection)
            return result
        } catch {
            await checkIn(connection)
            throw error
        }
    }

    /// Runs `body` in a transaction on a connection of its own: commits when it returns, rolls
    /// back when it throws.
    public func withTransaction<T: Sendable>(
        isolation: MySQLIsolationLevel? = nil, callerIsolation: isolated (any Actor)? = #isolation,
        _ body: (MySQLConnection) async throws -> T
    ) async throws -> T {
        try await withConnection { connection in
            try await connection.withTransaction(isolation: isolation, body)
        }
    }

    /// Runs one statement on a pooled connection; see ``MySQLConnection/query(_:_:)``.
    @discardableResult
    public func query(_ sql: String, _ values: [MySQLValue] = []) async throws -> MySQLResult {
        try await withConnection { try await $0.query(sql, values) }
    }

    /// Closes the idle connections and refuses new work; connections in use close when returned.
    public func close() async {
        let (idle, waiters) = state.withLock { state in
            state.isClosed = true
            defer { state.idle.removeAll(); state.waiters.removeAll() }
            return (state.idle, Array(state.waiters.values))
        }
        for connection in idle { await connection.close() }
        for waiter in waiters { waiter.resume() }
    }

    private enum Next {
        case reuse(MySQLConnection)
        case open
        case wait
        case closed
    }

    private func checkOut() async throws -> MySQLConnection {
        while true {
            try Task.checkCancellation()
            let next = state.withLock { state -> Next in
                if state.isClosed { return .closed }
                if let connection = state.idle.popLast() { return .reuse(connection) }
                if state.open < maximumConnections {
                    state.open += 1
                    return .open
                }
                return .wait
            }
            switch next {
            case .reuse(let connection):
                if !connection.isBroken { return connection }
                await discard(connection)
            case .open:
                do {
                    return try await MySQLConnection.connect(configuration, isolation: isolation, statements: statements)
                } catch {
                    released()
                    throw error
                }
            case .wait:
                await waitForConnection()
            case .closed:
                throw MySQLError.usage("The connection pool is closed.", operation: "connect")
            }
        }
    }

    private func checkIn(_ connection: MySQLConnection) async {
        if connection.isBroken {
            await discard(connection)
            return
        }
        let (keep, waiter) = state.withLock { state -> (Bool, CheckedContinuation<Void, Never>?) in
            guard !state.isClosed else { return (false, nil) }
            state.idle.append(connection)
            return (true, state.waiters.isEmpty ? nil : state.waiters.removeValue(forKey: state.waiters.keys.min()!))
        }
        if !keep { await discard(connection) }
        waiter?.resume()
    }

    private func discard(_ connection: MySQLConnection) async {
        await connection.close()
        released()
    }

    /// One open connection fewer: wake a waiter, who may open a new one.
    private func released() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.open -= 1
            return state.waiters.isEmpty ? nil : state.waiters.removeValue(forKey: state.waiters.keys.min()!)
        }
        waiter?.resume()
    }

    private func waitForConnection() async {
        let id = state.withLock { state -> UInt64 in
            state.nextWaiter &+= 1
            return state.nextWaiter
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let resumeNow = state.withLock { state -> Bool in
                    if state.isClosed || !state.idle.isEmpty || state.open < maximumConnections || Task.isCancelled { return true }
                    state.waiters[id] = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { $0.waiters.removeValue(forKey: id) }
            waiter?.resume()
        }
    }
}
