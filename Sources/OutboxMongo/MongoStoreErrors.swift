import Outbox

/// Turns ``MongoError``s into ``OutboxError``s that name what to fix.
///
/// Server messages of some errors quote the offending value (a duplicate key); for those only
/// the code is kept, so a key or payload never reaches a log line through an error.
enum MongoStoreErrors {
    /// Codes of a server that is shutting down, restarting or electing a primary: the replica set
    /// answers again within seconds.
    private static let restartingCodes: Set<Int> = [91, 189, 10107, 11600, 11602, 13435, 13436]

    /// Codes whose message can quote document values.
    private static let quotingCodes: Set<Int> = [11000, 11001, 12582, 121]

    static func map(_ error: any Error, operation: String) -> any Error {
        OutboxStoreErrorText.map(error, store: "MongoDB", operation: operation, as: MongoError.self, describe: { mongo in
            quotingCodes.contains(mongo.code) ? "MongoDB error \(mongo.code) during \(mongo.operation)" : mongo.description
        }, outboxError)
    }

    private static func outboxError(_ mongo: MongoError, _ text: OutboxStoreErrorText) -> OutboxError {
        if mongo.domain == 1 && mongo.code == 11 || mongo.domain == 14 {
            // libmongoc's authentication and SCRAM failures.
            return text.loginRefused
        }
        switch mongo.code {
        case 18, 8000:
            return text.loginRefused
        case 13:
            return text.error(.invalidConfiguration, "The MongoDB user may not use the outbox collections; grant readWrite on the database.")
        case 20, 263:
            return text.error(.invalidConfiguration, "The MongoDB server cannot run transactions; run it as a replica set (a single-node one will do).")
        case 11000 where text.operation == "enqueue" && mongo.message.contains("outbox_id"):
            return text.idAlreadyInOutbox
        case 10334, 17419, 17420, 2:
            return text.error(.invalidMessage, "The message does not fit in a MongoDB document (16 MB); send a smaller payload.")
        default:
            break
        }
        if mongo.isConnectionError || restartingCodes.contains(mongo.code) { return text.unreachable("check that it is up and the URL's hosts are right") }
        return text.failed("error \(mongo.code)", retriable: mongo.isTransientTransactionError || mongo.isUnknownCommitResult || mongo.code == 112)
    }
}
