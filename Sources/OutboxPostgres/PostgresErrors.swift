import Outbox
import PostgresNIO

/// Turns postgres-nio errors into ``OutboxError``s. `PSQLError`'s description already leaves out
/// bound values; the server's message and SQLSTATE are kept, the query text is not.
enum PostgresErrors {
    static func map(_ error: any Error, operation: String) -> any Error {
        if error is OutboxError || error is CancellationError { return error }
        if let transaction = error as? PostgresTransactionError {
            return map(transaction.closureError ?? transaction.beginError ?? transaction.commitError ?? transaction.rollbackError ?? error,
                       operation: operation)
        }
        return OutboxStoreErrorText.map(error, store: "PostgreSQL", operation: operation, as: PSQLError.self, describe: { psql in
            "\(psql.code) \(psql.serverInfo?[.sqlState] ?? "") \(psql.serverInfo?[.message] ?? "")"
        }, outboxError)
    }

    private static func outboxError(_ psql: PSQLError, _ text: OutboxStoreErrorText) -> OutboxError {
        let state = psql.serverInfo?[.sqlState] ?? ""
        let (operation, underlying) = (text.operation, text.underlying)
        switch state {
        case "42P01", "42703", "3F000", "42883":
            return text.schemaMissing
        case "28P01", "28000":
            return text.loginRefused
        case "3D000":
            return OutboxError(code: .invalidConfiguration, operation: operation,
                               message: "The PostgreSQL database does not exist; check the database name in the URL.", underlying: underlying)
        case "25P01":
            return OutboxError(code: .invalidConfiguration, operation: operation,
                               message: "\(operation) must run inside a transaction (client.withTransaction { connection in … }), or the messages would not be atomic with your data.",
                               underlying: underlying)
        case "23505" where operation == "enqueue":
            return text.idAlreadyInOutbox
        case "54000":
            return OutboxError(code: .invalidMessage, operation: operation,
                               message: "The message is larger than PostgreSQL accepts; send a smaller payload.", underlying: underlying)
        default:
            break
        }
        if psql.code == .connectionError || psql.code == .serverClosedConnection || psql.code == .clientClosedConnection || state.hasPrefix("08") || state.hasPrefix("57P") {
            // 57P01–57P03: the server is shutting down, crashed or still starting (a restart).
            return text.unreachable("check that it is up")
        }
        return text.failed("SQLSTATE \(state.isEmpty ? "none" : state)", retriable: state.hasPrefix("40") || state.hasPrefix("53"))
    }
}
