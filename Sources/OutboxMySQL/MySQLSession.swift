import CMariaDB
import Foundation
import Synchronization

/// Initialises libmariadb once per process (Swift runs a global's initialiser exactly once).
private let libraryInitialized: Bool = outbox_mysql_library_init() == 0

/// The blocking side of a ``MySQLConnection``: the `MYSQL` handle and its prepared statements.
///
/// Only the connection's worker thread touches it (hence `@unchecked Sendable`), except
/// `isBroken`, which is atomic.
final class MySQLSession: @unchecked Sendable {
    private var handle: UnsafeMutablePointer<MYSQL>?
    private var statements: [String: MySQLPreparedStatement] = [:]
    let isBroken = Atomic<Bool>(false)

    /// Statements kept prepared per connection; the server allows 16,382 in all by default.
    static let statementCacheLimit = 128

    private init(handle: UnsafeMutablePointer<MYSQL>) {
        self.handle = handle
    }

    static func open(_ configuration: MySQLConfiguration) throws -> MySQLSession {
        guard libraryInitialized, let handle = mysql_init(nil) else {
            throw MySQLError(code: 2008, sqlState: "HY000", message: "libmariadb could not be initialised (out of memory?).", operation: "connect")
        }
        func seconds(_ duration: Duration) -> UInt32 { UInt32(clamping: max(1, duration.components.seconds)) }
        _ = outbox_mysql_set_uint_option(handle, MYSQL_OPT_CONNECT_TIMEOUT, seconds(configuration.connectTimeout))
        _ = outbox_mysql_set_uint_option(handle, MYSQL_OPT_READ_TIMEOUT, seconds(configuration.socketTimeout))
        _ = outbox_mysql_set_uint_option(handle, MYSQL_OPT_WRITE_TIMEOUT, seconds(configuration.socketTimeout))
        // LOAD DATA LOCAL lets a server read the client's files; nothing here needs it.
        _ = outbox_mysql_set_uint_option(handle, MYSQL_OPT_LOCAL_INFILE, 0)
        _ = mysql_options(handle, MYSQL_SET_CHARSET_NAME, "utf8mb4")
        let tls = configuration.tls
        if tls.mode != .disabled {
            _ = outbox_mysql_set_bool_option(handle, MYSQL_OPT_SSL_ENFORCE, 1)
            _ = outbox_mysql_set_bool_option(handle, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, tls.mode == .verifyIdentity ? 1 : 0)
            if let file = tls.certificateAuthorityFile { _ = mysql_options(handle, MYSQL_OPT_SSL_CA, file) }
            if let file = tls.certificateFile { _ = mysql_options(handle, MYSQL_OPT_SSL_CERT, file) }
            if let file = tls.keyFile { _ = mysql_options(handle, MYSQL_OPT_SSL_KEY, file) }
        }
        let connected = mysql_real_connect(
            handle, configuration.host, configuration.username, configuration.password, configuration.database,
            UInt32(configuration.port), nil, 0)
        guard connected != nil else {
            let error = MySQLSession.error(of: handle, operation: "connect")
            mysql_close(handle)
            throw error
        }
        return MySQLSession(handle: handle)
    }

    func close() {
        for statement in statements.values { statement.close() }
        statements.removeAll()
        if let handle { mysql_close(handle) }
        handle = nil
        isBroken.store(true, ordering: .releasing)
    }

    deinit { close() }

    // MARK: - Statements

    func run(_ sql: String, _ values: [MySQLValue]) throws -> MySQLResult {
        do {
            let statement = try prepared(sql)
            return try statement.execute(values)
        } catch let error as MySQLError {
            if error.isConnectionLost { markBroken() }
            // A statement the server forgot (after a reconnect or a schema change) is prepared again next time.
            if error.code == 1243 { statements.removeValue(forKey: sql)?.close() }
            throw error
        }
    }

    func executeText(_ sql: String, operation: String) throws {
        let handle = try liveHandle(operation: operation)
        let failed = sql.withCString { mysql_real_query(handle, $0, UInt(strlen($0))) } != 0
        if failed {
            let error = Self.error(of: handle, operation: operation)
            if error.isConnectionLost { markBroken() }
            throw error
        }
        // Statements such as SET return no result set, but any that do must be drained.
        if let result = mysql_store_result(handle) { mysql_free_result(result) }
    }

    /// Reads the server's `max_allowed_packet` (``MySQLConnection`` keeps it once read).
    func readMaximumPacketBytes() throws -> Int {
        Int(try run("SELECT @@max_allowed_packet", []).rows.first?[0].int64 ?? 16 * 1024 * 1024)
    }

    private func prepared(_ sql: String) throws -> MySQLPreparedStatement {
        if let statement = statements[sql] { return statement }
        let handle = try liveHandle(operation: "prepare")
        if statements.count >= Self.statementCacheLimit {
            for statement in statements.values { statement.close() }
            statements.removeAll()
        }
        let statement = try MySQLPreparedStatement(connection: handle, sql: sql)
        statements[sql] = statement
        return statement
    }

    private func liveHandle(operation: String) throws -> UnsafeMutablePointer<MYSQL> {
        guard let handle, !isBroken.load(ordering: .acquiring) else {
            throw MySQLError(code: 2006, sqlState: "HY000", message: "The connection was lost earlier; open a new one.", operation: operation)
        }
        return handle
    }

    private func markBroken() {
        isBroken.store(true, ordering: .releasing)
    }

    static func error(of handle: UnsafeMutablePointer<MYSQL>, operation: String) -> MySQLError {
        MySQLError(code: Int(mysql_errno(handle)), sqlState: String(cString: mysql_sqlstate(handle)),
                   message: String(cString: mysql_error(handle)), operation: operation)
    }
}
