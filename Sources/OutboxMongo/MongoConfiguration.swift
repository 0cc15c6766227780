import Foundation
import Outbox

/// How to reach a MongoDB server (a replica set or sharded cluster: transactions need one).
///
/// Made from a ``MongoConnectionURL``; every option of the MongoDB connection-string format is
/// passed to libmongoc as is. The password is used only to connect: ``description`` never shows it.
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
    /// Documents per batch of a query's cursor; `nil` leaves it to the server (mongod answers
    /// 101 documents first, then up to 16 MB per batch). Reads follow the cursor to its end
    /// whatever the size; tests set a small size to prove it.
    public var batchSize: Int?
    private let redacted: String

    /// Settings for the server `url` names.
    public init(url: MongoConnectionURL, tls: TLS = .init(), maximumConnections: Int = 4) {
        connectionString = url.connectionString
        database = url.database
        redacted = url.description
        self.tls = tls
        self.maximumConnections = max(1, maximumConnections)
    }

    /// The URL without its password or any secret option value.
    public var description: String { redacted }
}
