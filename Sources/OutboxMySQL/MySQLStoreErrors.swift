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
        OutboxStoreErrorText.map(error, store: "MySQL", operation: operation, as: MySQLError.self, describe: { mysql in
            quotingCodes.contains(mysql.code) ? "MySQL error \(mysql.code) (\(mysql.sqlState)) during \(mysql.operation)" : mysql.description
        }, outboxError)
    }

    private static func outboxError(_ mysql: MySQLError, _ text: OutboxStoreErrorText) -> OutboxError {
        switch mysql.code {
        case 0:
            // This library's own errors (`MySQLError.usage`): sentences written for users, with no
            // bound value in them, so they are the message rather than "error 0".
            return text.error(.storeUnavailable, mysql.message)
        case 1146, 1054, 1305:
            return text.schemaMissing
        case 1045, 1698:
            return text.loginRefused
        case 1049:
            return text.error(.invalidConfiguration, "The MySQL database does not exist; check the database name in the URL.")
        case 1044:
            // Both a login to a database the user may not use and a migration's CREATE ROUTINE.
            return text.error(.invalidConfiguration, "MySQL denied the user access to the database or an action in it; grant SELECT, INSERT, UPDATE, DELETE and EXECUTE on it (and CREATE, ALTER, INDEX and CREATE ROUTINE for migrate).")
        case 1142, 1143:
            return text.error(.invalidConfiguration, "The MySQL user lacks a privilege on the outbox tables; grant SELECT, INSERT, UPDATE, DELETE and EXECUTE (and CREATE, ALTER, INDEX and CREATE ROUTINE for migrate).")
        case 1370:
            return text.error(.invalidConfiguration, "The MySQL user may not run or change the outbox's stored procedure; grant EXECUTE on the database (and CREATE ROUTINE for migrate).")
        case 1153, 1301, 2020:
            return text.error(.invalidMessage, "The message is larger than the MySQL server's max_allowed_packet; send a smaller payload or raise max_allowed_packet.")
        case 1406:
            return text.error(.invalidMessage, "A message field is longer than its MySQL column allows; shorten the topic, key or type.")
        case 1062 where text.operation == "enqueue":
            return text.idAlreadyInOutbox
        case 1062 where text.operation == "retry dead letters":
            // The messages table's unique id covers pending messages only (dead letters live in
            // the finished table), so an id can be enqueued again while its dead letter waits.
            return text.error(.invalidMessage, "A dead letter to send back has the id of a message enqueued again since it died, still pending; discard that dead letter, or send it back after the newer message is delivered.")
        case 1213, 1205:
            return text.error(.storeUnavailable, "MySQL rolled back the \(text.operation) after a lock conflict; it will be retried.", retriable: true)
        case 2026:
            return text.error(.invalidConfiguration, "The TLS connection to MySQL failed; check ssl-mode, ssl-ca, ssl-cert and ssl-key.")
        default:
            break
        }
        if mysql.isConnectionLost { return text.unreachable("check that it is up and the host and port are right") }
        return text.failed("error \(mysql.code), SQLSTATE \(mysql.sqlState)",
                           retriable: mysql.isTransient || mysql.sqlState.hasPrefix("40") || mysql.sqlState.hasPrefix("08"))
    }
}
