import Foundation
import Logging
import Outbox
import OutboxMongo
import OutboxMySQL
import OutboxPostgres
import OutboxSQLite
import PostgresNIO
import ServiceLifecycle

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
        case mysql(MySQLConfiguration)
        case mongo(MongoConfiguration)
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
            kind = .mysql(try MySQLConfiguration(url: trimmed))
        case "mongodb", "mongodb+srv":
            kind = .mongo(try MongoConfiguration(url: trimmed))
        default:
            throw OutboxError(code: .invalidConfiguration, operation: "parse store URL",
                              message: "Unknown store scheme '\(scheme)'; use sqlite:///path/to/outbox.sqlite, postgres://user@host/database, mysql://user@host/database or mongodb://host/database.")
        }
    }

    var description: String {
        switch kind {
        case .sqlite(let path): "sqlite://\(path)"
        case .postgres(let url): url.description
        case .mysql(let configuration): configuration.description
        case .mongo(let configuration): configuration.description
        }
    }

    /// A store and the services it needs running (a PostgreSQL client pool and listener).
    struct Opened {
        let store: any OutboxStore
        let services: [any Service]
    }

    /// Opens the store, runs its services while `body` runs, and stops them afterwards.
    func withStore<T: Sendable>(
        partitionCount: Int = 32, creating: Bool = false, logger: Logger = Logger(label: "outbox"),
        _ body: @Sendable (any OutboxStore) async throws -> T
    ) async throws -> T {
        let opened = try await open(partitionCount: partitionCount, creating: creating, logger: logger)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            // One-shot commands need the connection pool, not the relay's notification listener.
            for service in opened.services where !(service is PostgresOutboxStore || service is MongoOutboxStore) { group.addTask { try await service.run() } }
            defer { group.cancelAll() }
            return try await body(opened.store)
        }
    }

    /// Opens the store (without migrating it). Only `migrate` may create it: for every other
    /// command a missing file is a mistyped path, not a wish for an empty outbox.
    func open(partitionCount: Int = 32, creating: Bool = false, logger: Logger) async throws -> Opened {
        switch kind {
        case .postgres(let url):
            try await url.checkConnection(logger: logger)
            var quiet = logger
            quiet.logLevel = max(logger.logLevel, .warning)
            let client = PostgresClient(configuration: url.clientConfiguration, backgroundLogger: quiet)
            let store = try PostgresOutboxStore(
                client: client,
                configuration: .init(partitionCount: partitionCount, listenerConnection: try url.makeConnectionConfiguration()),
                logger: logger)
            return Opened(store: store, services: [client, store])
        case .mysql(let configuration):
            try await configuration.checkConnection()
            let store = try MySQLOutboxStore(connection: configuration, configuration: .init(partitionCount: partitionCount), logger: logger)
            return Opened(store: store, services: [store])
        case .mongo(let configuration):
            let client = try MongoClient(configuration: configuration)
            try await checkMongo(client)
            let store = try MongoOutboxStore(client: client, configuration: .init(partitionCount: partitionCount), logger: logger)
            return Opened(store: store, services: [store])
        case .sqlite(let path):
            if !creating && !FileManager.default.fileExists(atPath: path) {
                throw OutboxError(code: .invalidConfiguration, operation: "open store",
                                  message: "There is no outbox at \(path); check the path, or create it with `outbox migrate --store \(self)`.")
            }
            return Opened(store: try SQLiteOutboxStore(path: path, configuration: .init(partitionCount: partitionCount)), services: [])
        }
    }
}

/// Connects once, so a wrong host or a standalone server fails now, in one sentence.
func checkMongo(_ client: MongoClient) async throws {
    do {
        try await client.checkTransactionSupport()
    } catch let error as MongoError {
        throw OutboxError(code: .storeUnavailable, operation: "connect",
                          message: "Cannot reach MongoDB at \(client.configuration); check the hosts and that the server is up.",
                          isRetriable: true, underlying: error)
    }
}
