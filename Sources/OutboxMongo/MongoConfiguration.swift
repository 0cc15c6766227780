public import Foundation
public import Outbox

/// How to reach a MongoDB server (a replica set or sharded cluster: transactions need one).
///
/// `mongodb://user:password@host:27017/database?replicaSet=rs0&tls=true&tlsCAFile=/path/ca.pem` —
/// every option of the MongoDB connection-string format is passed to libmongoc as is. The
/// password is used only to connect: ``description`` never shows it.
public struct MongoConfiguration: Sendable, CustomStringConvertible {
    /// TLS settings added to the connection string's own options.
    public struct TLS: Sendable, Hashable {
        /// Whether to connect with TLS (`tls=true`). Default `false` (or what the URL says).
        public var enabled: Bool
        /// CA certificates to verify the server against (`tlsCAFile`).
        public var certificateAuthorityFile: String?
        /// Client certificate and key, one PEM file (`tlsCertificateKeyFile`).
        public var certificateKeyFile: String?
        /// Skip certificate verification (`tlsAllowInvalidCertificates`); for tests only.
        public var allowInvalidCertificates: Bool

        /// Creates TLS settings.
        public init(enabled: Bool = false, certificateAuthorityFile: String? = nil, certificateKeyFile: String? = nil,
                    allowInvalidCertificates: Bool = false) {
            self.enabled = enabled
            self.certificateAuthorityFile = certificateAuthorityFile
            self.certificateKeyFile = certificateKeyFile
            self.allowInvalidCertificates = allowInvalidCertificates
        }
    }

    /// The connection string as given (with its password).
    let connectionString: String
    /// The database of the URL's path; `outbox` when the path is empty.
    public var database: String
    /// Extra TLS settings.
    public var tls: TLS
    /// Connections (each with its own thread) the client may use at once. Default 4.
    public var maximumConnections: Int
    private let redacted: String

    /// Parses a `mongodb://` or `mongodb+srv://` URL.
    ///
    /// - Throws: ``OutboxError`` with code `.invalidConfiguration`, in one sentence that never
    ///   repeats the password.
    public init(url text: String, tls: TLS = .init(), maximumConnections: Int = 4) throws {
        func invalid(_ message: String) -> OutboxError {
            OutboxError(code: .invalidConfiguration, operation: "parse MongoDB URL", message: message)
        }
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
              scheme == "mongodb" || scheme == "mongodb+srv"
        else {
            throw invalid("The MongoDB URL is malformed; use mongodb://user:password@host:27017/database.")
        }
        guard let host = components.host, !host.isEmpty else {
            throw invalid("The MongoDB URL names no host; use mongodb://user@host:27017/database.")
        }
        let database = String(components.path.drop { $0 == "/" })
        guard !database.contains("/"), !database.contains("."), !database.contains(" "), database.utf8.count < 64 else {
            throw invalid("The MongoDB database name in the URL is not valid; use letters, digits, '_' and '-'.")
        }
        connectionString = text
        self.database = database.isEmpty ? "outbox" : database
        self.tls = tls
        self.maximumConnections = max(1, maximumConnections)
        var shown = components
        shown.password = nil
        redacted = shown.string ?? "\(scheme)://\(host)"
    }

    /// The URL without its password.
    public var description: String { redacted }
}
