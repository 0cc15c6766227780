/// An error from libmongoc or the MongoDB server.
///
/// `description` names the code and the message; server messages can quote values (a duplicate
/// key), so the outbox store reduces those to the code before they reach a log.
public struct MongoError: Error, Sendable, CustomStringConvertible {
    /// libmongoc's error domain (e.g. 17 = server, 2 = stream/connection, 15 = server selection).
    public var domain: Int
    /// The server's error code (e.g. 112 WriteConflict, 11000 duplicate key) or libmongoc's.
    public var code: Int
    /// The message.
    public var message: String
    /// The server's error labels, e.g. `TransientTransactionError`.
    public var labels: [String] = []
    /// What was being done.
    public var operation: String

    public var description: String { "MongoDB error \(code) during \(operation): \(message)" }

    /// The whole transaction may succeed when run again (write conflict, lost primary, …).
    public var isTransientTransactionError: Bool { labels.contains("TransientTransactionError") }
    /// The commit may or may not have happened; committing again is safe.
    public var isUnknownCommitResult: Bool { labels.contains("UnknownTransactionCommitResult") }

    /// No server could be reached (selection timeout, connection refused, socket errors).
    public var isConnectionError: Bool {
        // libmongoc domains: 2 = stream, 15 = server selection (13053: no suitable server). Server
        // codes: 6 HostUnreachable, 89 NetworkTimeout, 91 ShutdownInProgress, 189 PrimarySteppedDown,
        // 11600/11602 InterruptedAtShutdown / InterruptedDueToReplStateChange.
        domain == 2 || domain == 15 || [6, 89, 91, 189, 11600, 11602, 13053].contains(code)
    }

    static func usage(_ message: String, operation: String) -> MongoError {
        MongoError(domain: 0, code: 0, message: message, operation: operation)
    }
}
