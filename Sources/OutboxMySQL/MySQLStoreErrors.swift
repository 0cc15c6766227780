import Outbox

/// Turns ``MySQLError``s into ``OutboxError``s that name what to fix.
///
/// Server messages for some codes quote the offending value (a duplicate key, a string the
/// column could not take); for those only the code and SQLSTATE are kept, so a payload or key
/// never reaches a log line through an error.
enum MySQLStoreErrors {
    /// Codes whose server message can quote bound values.
    private static let quotingCodes: Set<Int> = [1048, 1062, 1264, 1292, 1366, 1406, 1451, 1452, 1586]

    static func map(_ error: any Error, operation: String) -> any Error {
        if error is OutboxError || error is CancellationError { return error }
        guard let mysql = error as? MySQLError else {
            return OutboxError(code: .storeUnavailable, operation: operation,
                               message: "The MySQL outbox failed during \(operation).", isRetriable: true,
                               underlying: OutboxUnderlyingError(error))
        }
        let underlying = OutboxUnderlyingError(text: quotingCodes.contains(mysql.code)
            ? "MySQL error \(mysql.code) (\(mysql.sqlState)) during \(mysql.operation)"
            : mysql.description)
        func outbox(_ code: OutboxError.Code, _ message: String, retriable: Bool = false) -> OutboxError {
            OutboxError(code: code, operation: operation, message: message, isRetriable: retriable, underlying: underlying)
        }
        switch mysql.code {
        case 1146, 1054:
            return outbox(.schemaMismatch, "The MySQL outbox tables are missing or from another version; run `outbox migrate` first.")
        case 1045, 1044, 1698:
            return outbox(.invalidConfiguration, "MySQL refused the login; check the user name and password.")
        case 1049:
            return outbox(.invalidConfiguration, "The MySQL database does not exist; check the database name in the URL.")
        case 1142, 1143:
            return outbox(.invalidConfiguration, "The MySQL user lacks a privilege on the outbox tables; grant SELECT, INSERT, UPDATE, DELETE (and CREATE for migrate).")
        case 1153, 1301, 2020:
            return outbox(.invalidMessage, "The message is larger than the MySQL server's max_allowed_packet; send a smaller payload or raise max_allowed_packet.")
        case 1406:
            return outbox(.invalidMessage, "A message field is longer than its MySQL column allows; shorten the topic, key or type.")
        case 1213, 1205:
            return outbox(.storeUnavailable, "MySQL rolled back the \(operation) after a lock conflict; it will be retried.", retriable: true)
        case 2026:
            return outbox(.invalidConfiguration, "The TLS connection to MySQL failed; check ssl-mode, ssl-ca, ssl-cert and ssl-key.")
        default:
            break
        }
        if mysql.isConnectionLost {
            return outbox(.storeUnavailable, "The MySQL server could not be reached during \(operation); check that it is up and the host and port are right.",
                          retriable: true)
        }
        return outbox(.storeUnavailable, "MySQL failed during \(operation) (error \(mysql.code), SQLSTATE \(mysql.sqlState)).",
                      retriable: mysql.isTransient || mysql.sqlState.hasPrefix("40") || mysql.sqlState.hasPrefix("08"))
    }
}
