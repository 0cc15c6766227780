import GRDB
import Outbox

/// Turns SQLite errors into ``OutboxError``s whose message says what to fix, without SQL arguments.
enum SQLiteErrors {
    static func map(_ error: any Error, operation: String, path: String) -> any Error {
        if error is OutboxError || error is CancellationError { return error }
        guard let database = error as? DatabaseError else {
            return OutboxError(code: .storeUnavailable, operation: operation,
                               message: "The SQLite outbox at \(path) failed during \(operation).", underlying: OutboxUnderlyingError(error))
        }
        let text = database.message ?? ""
        let code = database.resultCode
        let underlying = OutboxUnderlyingError(database)
        if text.contains("no such table") || text.contains("no such column") {
            return OutboxError(code: .schemaMismatch, operation: operation,
                               message: "The outbox tables in \(path) are missing or from another version; run `outbox migrate` first.",
                               underlying: underlying)
        }
        if text.contains("already exists") {
            return OutboxError(code: .schemaMismatch, operation: operation,
                               message: "\(path) already has a table named like the outbox's that swift-outbox did not create; use another database file.",
                               underlying: underlying)
        }
        if operation == "enqueue" && database.extendedResultCode == .SQLITE_CONSTRAINT_UNIQUE {
            return OutboxStoreErrorText(store: "SQLite", operation: operation, underlying: underlying).idAlreadyInOutbox
        }
        switch code {
        case .SQLITE_BUSY, .SQLITE_LOCKED:
            return OutboxError(code: .storeUnavailable, operation: operation,
                               message: "The SQLite outbox at \(path) stayed locked by another connection; try again.", isRetriable: true, underlying: underlying)
        case .SQLITE_CANTOPEN, .SQLITE_PERM, .SQLITE_AUTH:
            return OutboxError(code: .invalidConfiguration, operation: operation,
                               message: "Cannot open the SQLite outbox at \(path); check that the folder exists and is writable.", underlying: underlying)
        case .SQLITE_READONLY:
            return OutboxError(code: .invalidConfiguration, operation: operation,
                               message: "The SQLite outbox at \(path) is read-only; make the file and its folder writable.", underlying: underlying)
        case .SQLITE_NOTADB, .SQLITE_CORRUPT:
            return OutboxError(code: .invalidConfiguration, operation: operation,
                               message: "\(path) is not an SQLite database or is damaged; point the outbox at another file.", underlying: underlying)
        case .SQLITE_FULL, .SQLITE_IOERR:
            return OutboxError(code: .storeUnavailable, operation: operation,
                               message: "Writing the SQLite outbox at \(path) failed (disk full or I/O error).", isRetriable: true, underlying: underlying)
        case .SQLITE_TOOBIG:
            return OutboxError(code: .invalidMessage, operation: operation,
                               message: "The message is larger than SQLite accepts; send a smaller payload.", underlying: underlying)
        default:
            return OutboxError(code: .storeUnavailable, operation: operation,
                               message: "The SQLite outbox at \(path) failed during \(operation) (SQLite code \(code.rawValue)).", underlying: underlying)
        }
    }
}
