import Outbox

/// Turns ``MongoError``s into ``OutboxError``s that name what to fix.
///
/// Server messages of some errors quote the offending value (a duplicate key); for those only
/// the code is kept, so a key or payload never reaches a log line through an error.
enum MongoStoreErrors {
    /// Codes whose message can quote document values.
    private static let quotingCodes: Set<Int> = [11000, 11001, 12582, 121]

    static func map(_ error: any Error, operation: String) -> any Error {
        if error is OutboxError || error is CancellationError { return error }
        guard let mongo = error as? MongoError else {
            return OutboxError(code: .storeUnavailable, operation: operation, message: "The MongoDB outbox failed during \(operation).",
                               isRetriable: true, underlying: OutboxUnderlyingError(error))
        }
        let underlying = OutboxUnderlyingError(text: quotingCodes.contains(mongo.code)
            ? "MongoDB error \(mongo.code) during \(mongo.operation)" : mongo.description)
        func outbox(_ code: OutboxError.Code, _ message: String, retriable: Bool = false) -> OutboxError {
            OutboxError(code: code, operation: operation, message: message, isRetriable: retriable, underlying: underlying)
        }
        if mongo.domain == 1 && mongo.code == 11 || mongo.domain == 14 {
            // libmongoc's authentication and SCRAM failures.
            return outbox(.invalidConfiguration, "MongoDB refused the login; check the user name and password.")
        }
        switch mongo.code {
        case 18, 8000:
            return outbox(.invalidConfiguration, "MongoDB refused the login; check the user name and password.")
        case 13:
            return outbox(.invalidConfiguration, "The MongoDB user may not use the outbox collections; grant readWrite on the database.")
        case 20, 263:
            return outbox(.invalidConfiguration, "The MongoDB server cannot run transactions; run it as a replica set (a single-node one will do).")
        case 10334, 17419, 17420, 2:
            return outbox(.invalidMessage, "The message does not fit in a MongoDB document (16 MB); send a smaller payload.")
        default:
            break
        }
        if mongo.isConnectionError {
            return outbox(.storeUnavailable, "The MongoDB server could not be reached during \(operation); check that it is up and the URL's hosts are right.",
                          retriable: true)
        }
        return outbox(.storeUnavailable, "MongoDB failed during \(operation) (error \(mongo.code)).",
                      retriable: mongo.isTransientTransactionError || mongo.isUnknownCommitResult || mongo.code == 112)
    }
}
