import Foundation
import Logging
import Outbox
import OutboxMongo
import OutboxMySQL
import OutboxPostgres

/// Where the outbox lives, parsed from a store URL (`--store` or `OUTBOX_STORE_URL`).
///
/// `sqlite:///absolute/path.sqlite`, `sqlite://relative.sqlite`, `sqlite:relative.sqlite` and
/// `postgres://user:password@host:5432/database?sslmode=…`,
/// `mysql://user:password@host:3306/database?ssl-mode=…` and
/// `mongodb://user:password@host:27017/database?replicaSet=…` are understood.
struct StoreLocation: CustomStringConvertible {
    enum Kind {
        case sqlite(path: String)
        case postgres(PostgresConnectionURL)
        case mysql(MySQLConnectionURL)
        case mongo(MongoConnectionURL)
    }

    let kind: Kind

    static let environmentVariable = "OUTBOX_STORE_URL"
    static let defaultURL = "sqlite://outbox.sqlite"

    /// The URL from the option, else the environment, else the default.
    static func resolve(_ option: String?) throws -> StoreLocation {
        try StoreLocation(url: option ?? ProcessInfo.processInfo.environment[environmentVariable] ?? defaultURL)
    }

    init(url: String) throws {
        let trimmed = url.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty else {
            throw OutboxError(code: .invalidConfiguration, operation: "parse store URL",
                              message: "The store URL is empty; use for example sqlite:///var/lib/app/outbox.sqlite.")
        }
        guard let colon = trimmed.firstIndex(of: ":") else {
            throw OutboxError(code: .invalidConfiguration, operation: "parse store URL",
                              message: "The store URL has no scheme; use for example sqlite:///var/lib/app/outbox.sqlite.")
        }
        let scheme = trimmed[..<colon].lowercased()
        var rest = String(trimmed[trimmed.index(after: colon)...])
        switch scheme {
        case "sqlite", "sqlite3", "file":
            if rest.hasPrefix("//") { rest.removeFirst(2) }
            if let query = rest.firstIndex(of: "?") { rest = String(rest[..<query]) }
            rest = rest.removingPercentEncoding ?? rest
            guard !rest.isEmpty, rest != "/" else {
                throw OutboxError(code: .invalidConfiguration, operation: "parse store URL",
                                  message: "The SQLite URL names no file; use for example sqlite:///var/lib/app/outbox.sqlite.")
            }
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: rest, isDirectory: &isDirectory), isDirectory.boolValue {
                throw OutboxError(code: .invalidConfiguration, operation: "parse store URL",
                                  message: "The SQLite path \(rest) is a folder; name a file inside it, such as \(rest)/outbox.sqlite.")
            }
            kind = .sqlite(path: rest)
        case "postgres", "postgresql":
            kind = .postgres(try PostgresConnectionURL(trimmed))
        case "mysql", "mariadb":
            kind = .mysql(try MySQLConnectionURL(trimmed))
        case "mongodb", "mongodb+srv":
            kind = .mongo(try MongoConnectionURL(trimmed))
        default:
            throw OutboxError(code: .invalidConfiguration, operation: "parse store URL",
                              message: "Unknown store scheme '\(scheme)'; use sqlite:///path/to/outbox.sqlite, postgres://user@host/database, mysql://user@host/database or mongodb://host/database.")
        }
    }

    var description: String {
        switch kind {
        case .sqlite(let path): "sqlite://\(path)"
        case .postgres(let url): url.description
        case .mysql(let url): url.description
        case .mongo(let url): url.description
        }
    }

    /// Opens the store (see ``OpenedStore``), runs its connection services while `body` runs, and
    /// stops them afterwards. Only `migrate` (and the demo, bench and chaos on their own folders)
    /// may create a SQLite file: for every other command a missing file is a mistyped path.
    func withStore<T: Sendable>(
        partitionCount: Int = 32, creating: Bool = false, logger: Logger = Logger(label: "outbox"),
        _ body: @Sendable (any OutboxStore) async throws -> T
    ) async throws -> T {
        let opened = try await OpenedStore.open(self, settings: StoreSettings(partitionCount: partitionCount, creating: creating), logger: logger)
        return try await opened.withServices { try await body($0.store) }
    }
}
