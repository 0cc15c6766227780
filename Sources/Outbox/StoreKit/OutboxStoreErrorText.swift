/// The sentences every store's error mapping shares, worded once: which store, during which
/// operation, and what to fix. A store maps its driver's codes to these (and to its own sentences
/// for what only it can say).
package struct OutboxStoreErrorText: Sendable {
    /// The store's name in sentences, e.g. "MySQL".
    package let store: String
    /// What was being done, e.g. "claim".
    package let operation: String
    /// The driver's error as it may be logged (never a bound value).
    package let underlying: OutboxUnderlyingError?

    package init(store: String, operation: String, underlying: OutboxUnderlyingError?) {
        self.store = store
        self.operation = operation
        self.underlying = underlying
    }

    /// An error of this operation with `message`.
    package func error(_ code: OutboxError.Code, _ message: String, retriable: Bool = false) -> OutboxError {
        OutboxError(code: code, operation: operation, message: message, isRetriable: retriable, underlying: underlying)
    }

    /// The tables (collections) are missing or from another version.
    package var schemaMissing: OutboxError {
        error(.schemaMismatch, "The \(store) outbox tables are missing or from another version; run `outbox migrate` first.")
    }

    /// An enqueued message's id is already in the outbox (the store's unique index on ids).
    package var idAlreadyInOutbox: OutboxError {
        error(.invalidMessage, "A message with the same id is already in the outbox, so the enqueue was refused; give every message its own id (OutboxMessage makes a fresh one unless you pass one).")
    }

    /// The server refused the login.
    package var loginRefused: OutboxError {
        error(.invalidConfiguration, "\(store) refused the login; check the user name and password.")
    }

    /// The connection was lost or never made; `hint` says what to check.
    package func unreachable(_ hint: String) -> OutboxError {
        error(.storeUnavailable, "The \(store) server could not be reached during \(operation); \(hint).", retriable: true)
    }

    /// Any other failure of the server, named by its `code`.
    package func failed(_ code: String, retriable: Bool) -> OutboxError {
        error(.storeUnavailable, "\(store) failed during \(operation) (\(code)).", retriable: retriable)
    }

    /// Maps `error` of `operation` the way every store does: an ``OutboxError`` or a
    /// cancellation passes as it is; an error of another driver than `Driver` becomes "the outbox
    /// failed"; a `Driver` error goes to `body` with the sentences for this store and operation,
    /// its loggable text made by `describe` (which must leave out any bound value).
    package static func map<Driver: Error>(
        _ error: any Error, store: String, operation: String, as _: Driver.Type,
        describe: (Driver) -> String, _ body: (Driver, OutboxStoreErrorText) -> OutboxError
    ) -> any Error {
        if error is OutboxError || error is CancellationError { return error }
        guard let driver = error as? Driver else {
            return OutboxError(code: .storeUnavailable, operation: operation, message: "The \(store) outbox failed during \(operation).",
                               isRetriable: true, underlying: OutboxUnderlyingError(error))
        }
        return body(driver, OutboxStoreErrorText(store: store, operation: operation, underlying: OutboxUnderlyingError(text: describe(driver))))
    }
}
