/// The error every part of the core and its stores throw.
///
/// `description` is one sentence that names what to fix; it never contains payloads, bound
/// values or passwords.
public struct OutboxError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure this is. Extensible: do not switch over it exhaustively.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }

        /// The message breaks a limit or is malformed.
        public static let invalidMessage = Code("invalidMessage")
        /// A configuration value, URL or path is wrong.
        public static let invalidConfiguration = Code("invalidConfiguration")
        /// The store schema is missing, foreign or from a newer version.
        public static let schemaMismatch = Code("schemaMismatch")
        /// The store could not be reached or answered with an error.
        public static let storeUnavailable = Code("storeUnavailable")
        /// The publisher (broker) could not be reached.
        public static let publisherUnavailable = Code("publisherUnavailable")
        /// A named item (dead letter, message) does not exist.
        public static let notFound = Code("notFound")

        public var description: String { name }
    }

    /// What kind of failure this is.
    public var code: Code
    /// The operation that failed, e.g. `claim`, `migrate`.
    public var operation: String
    /// One sentence that names what to fix.
    public var message: String
    /// Whether trying the same operation again later can succeed.
    public var isRetriable: Bool
    /// The underlying error, kept for `String(reflecting:)`; never shown in `description`.
    public var underlying: (any Error & Sendable)?

    /// Creates an error.
    public init(code: Code, operation: String, message: String, isRetriable: Bool = false, underlying: (any Error & Sendable)? = nil) {
        self.code = code
        self.operation = operation
        self.message = message
        self.isRetriable = isRetriable
        self.underlying = underlying
    }

    public var description: String { message }
}

/// The text of an underlying error that is not `Sendable` (a driver's error), kept for
/// `String(reflecting:)` of an ``OutboxError``. Stores must not put bound values in it.
public struct OutboxUnderlyingError: Error, Sendable, CustomStringConvertible {
    /// The underlying error's text.
    public let description: String

    /// Keeps the text of `error`.
    public init(_ error: any Error) { description = String(describing: error) }

    /// Keeps `text`.
    public init(text: String) { description = text }
}

extension OutboxError: CustomDebugStringConvertible {
    public var debugDescription: String {
        var text = "OutboxError(code: \(code), operation: \(operation), message: \(message), retriable: \(isRetriable)"
        if let underlying { text += ", underlying: \(String(reflecting: underlying))" }
        return text + ")"
    }
}
