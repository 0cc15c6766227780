import Foundation
import Outbox

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
    /// Documents per batch of a query's cursor; `nil` leaves it to the server (mongod answers
    /// 101 documents first, then up to 16 MB per batch). Reads follow the cursor to its end
    /// whatever the size; tests set a small size to prove it.
    public var batchSize: Int?
    private let redacted: String

    /// Parses a `mongodb://` or `mongodb+srv://` URL.
    ///
    /// - Throws: ``OutboxError`` with code `.invalidConfiguration`, in one sentence that never
    ///   repeats the password.
    public init(url text: String, tls: TLS = .init(), maximumConnections: Int = 4) throws {
        func invalid(_ message: String) -> OutboxError {
            OutboxError(code: .invalidConfiguration, operation: "parse MongoDB URL", message: message)
        }
        // Parsed by hand: a MongoDB URL may list several hosts ("h1:27017,h2:27017"), which
        // URLComponents rejects. libmongoc parses it again, in full, when the client is made.
        let lowered = text.lowercased()
        guard let scheme = ["mongodb+srv://", "mongodb://"].first(where: { lowered.hasPrefix($0) }) else {
            throw invalid("The MongoDB URL is malformed; use mongodb://user:password@host:27017/database.")
        }
        var rest = Substring(text.dropFirst(scheme.count))
        var options = ""
        if let question = rest.firstIndex(of: "?") {
            options = String(rest[rest.index(after: question)...])
            rest = rest[..<question]
        }
        var path = ""
        let slash = rest.lastIndex(of: "@").flatMap { rest[$0...].firstIndex(of: "/") } ?? rest.firstIndex(of: "/")
        if let slash {
            path = String(rest[rest.index(after: slash)...])
            rest = rest[..<slash]
        }
        var userInfo: Substring?
        if let at = rest.lastIndex(of: "@") {
            userInfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
        }
        guard !rest.isEmpty, !rest.split(separator: ",").contains(where: \.isEmpty) else {
            throw invalid("The MongoDB URL names no host; use mongodb://user@host:27017/database.")
        }
        let database = path.removingPercentEncoding ?? path
        guard !database.contains("/"), !database.contains("."), !database.contains(" "), !database.contains("$"), database.utf8.count < 64 else {
            throw invalid("The MongoDB database name in the URL is not valid; use letters, digits, '_' and '-'.")
        }
        connectionString = text
        self.database = database.isEmpty ? "outbox" : database
        self.tls = tls
        self.maximumConnections = max(1, maximumConnections)
        let user = userInfo.map { info in info.split(separator: ":", maxSplits: 1).first.map(String.init) ?? "" }
        let shownOptions = Self.redactingSecrets(options)
        redacted = "\(scheme)\(user.map { "\($0)@" } ?? "")\(rest)/\(database)\(shownOptions.isEmpty ? "" : "?\(shownOptions)")"
    }

    /// The URL without its password or any secret option value.
    public var description: String { redacted }

    /// The query string with the value of every option that can hold a secret replaced by `***`:
    /// any option whose name mentions a password, secret, token or key material, and
    /// `authMechanismProperties` (it carries cloud session tokens).
    static func redactingSecrets(_ options: String) -> String {
        options.split(separator: "&", omittingEmptySubsequences: false).map { option in
            guard let equals = option.firstIndex(of: "=") else { return String(option) }
            let name = option[..<equals].lowercased()
            let secret = ["password", "secret", "token", "authmechanismproperties", "credential"].contains { name.contains($0) }
            return secret ? "\(option[..<equals])=***" : String(option)
        }.joined(separator: "&")
    }
}
