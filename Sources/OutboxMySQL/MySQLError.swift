/// An error reported by the MySQL/MariaDB client library or server.
///
/// `description` names the error code and the server's sentence; it never contains bound values
/// or the password. Codes below 2000 come from the server (`ER_…`), codes 2000–2999 from the
/// client library (`CR_…`, e.g. 2013 "lost connection").
public struct MySQLError: Error, Sendable, CustomStringConvertible {
    /// The MySQL error number, e.g. 1062 (duplicate key) or 2013 (lost connection).
    public var code: Int
    /// The five-character SQLSTATE, e.g. `23000`.
    public var sqlState: String
    /// The client library's or server's message.
    public var message: String
    /// What was being done: `connect`, `prepare`, `execute`, `fetch`, `begin`, `commit`, ….
    public var operation: String

    /// Creates an error.
    public init(code: Int, sqlState: String, message: String, operation: String) {
        self.code = code
        self.sqlState = sqlState
        self.message = message
        self.operation = operation
    }

    public var description: String { "MySQL error \(code) (\(sqlState)) during \(operation): \(message)" }

    /// Whether the connection is gone (server down, restarted, network lost, timed out), so the
    /// connection must be discarded; the same work may succeed on a new connection.
    public var isConnectionLost: Bool {
        switch code {
        case 2002, 2003, 2005, 2006, 2013, 2026, 2055, 1053, 1927, 4031: true
        default: false
        }
    }

    /// Whether the transaction was rolled back by the server and may succeed when run again
    /// (deadlock 1213, lock wait timeout 1205).
    public var isTransient: Bool { code == 1213 || code == 1205 || isConnectionLost }

    /// An error raised by this library rather than by libmariadb (for example a placeholder count
    /// that does not match the values).
    static func usage(_ message: String, operation: String) -> MySQLError {
        MySQLError(code: 0, sqlState: "HY000", message: message, operation: operation)
    }
}
