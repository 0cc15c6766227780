import Foundation
import Outbox

/// How to reach a MySQL or MariaDB server.
///
/// Parse one from a URL with ``MySQLConnectionURL``:
/// `mysql://user:password@host:3306/database?ssl-mode=REQUIRED&ssl-ca=/path/ca.pem`.
/// The password is used only to connect: ``description`` never shows it.
public struct MySQLConfiguration: Sendable, CustomStringConvertible {
    /// Whether and how the connection is encrypted.
    public enum TLSMode: String, Sendable, CaseIterable {
        /// Plain TCP. The URL's `ssl-mode=DISABLED`.
        case disabled = "DISABLED"
        /// Encrypted; the server's certificate is not checked. `ssl-mode=REQUIRED`.
        case required = "REQUIRED"
        /// Encrypted; the certificate must chain to ``TLS/certificateAuthorityFile`` (or the
        /// system's CAs) and name the host. `ssl-mode=VERIFY_IDENTITY`.
        case verifyIdentity = "VERIFY_IDENTITY"
    }

    /// TLS settings; file paths are PEM files readable by the process.
    public struct TLS: Sendable, Hashable {
        /// Whether and how the connection is encrypted. Default ``TLSMode/disabled``.
        public var mode: TLSMode
        /// CA certificate(s) to verify the server against (`ssl-ca`).
        public var certificateAuthorityFile: String?
        /// Client certificate for mutual TLS (`ssl-cert`).
        public var certificateFile: String?
        /// Key of the client certificate (`ssl-key`).
        public var keyFile: String?

        /// Creates TLS settings.
        public init(mode: TLSMode = .disabled, certificateAuthorityFile: String? = nil, certificateFile: String? = nil, keyFile: String? = nil) {
            self.mode = mode
            self.certificateAuthorityFile = certificateAuthorityFile
            self.certificateFile = certificateFile
            self.keyFile = keyFile
        }
    }

    /// The server's host name or address.
    public var host: String
    /// The server's TCP port. Default 3306.
    public var port: Int
    /// The user name.
    public var username: String
    /// The password, if any; never logged.
    public var password: String?
    /// The database (schema) to use.
    public var database: String
    /// TLS settings.
    public var tls: TLS
    /// How long connecting may take. Default 10 s.
    public var connectTimeout: Duration
    /// How long one read or write on the socket may block before the connection counts as lost.
    /// Default 60 s; keep it above your longest statement.
    public var socketTimeout: Duration

    /// Creates a configuration.
    public init(
        host: String, port: Int = 3306, username: String, password: String? = nil, database: String,
        tls: TLS = .init(), connectTimeout: Duration = .seconds(10), socketTimeout: Duration = .seconds(60)
    ) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
        self.tls = tls
        self.connectTimeout = connectTimeout
        self.socketTimeout = socketTimeout
    }

    /// The URL without its password.
    public var description: String { "mysql://\(username)@\(host):\(port)/\(database)?ssl-mode=\(tls.mode.rawValue)" }
}
