import Foundation
import Logging
public import Outbox
public import PostgresNIO

/// A `postgres://user:password@host:port/database?sslmode=…` URL, parsed for postgres-nio.
///
/// `sslmode` may be `disable`, `prefer` (the default) or `require`. Parsed and redacted like
/// every store's URL (``OutboxConnectionURL``): the password is kept only to connect, and
/// ``description`` never shows it.
public struct PostgresConnectionURL: OutboxStoreURL {
    /// The server's host name or address.
    public var host: String
    /// The server's port. Default 5432.
    public var port: Int
    /// The user name.
    public var username: String
    /// The password, if any.
    public var password: String?
    /// The database.
    public var database: String
    /// `disable`, `prefer` or `require`.
    public var sslMode: String
    private let url: OutboxConnectionURL

    /// Parses a URL.
    ///
    /// - Throws: ``OutboxError`` with code `.invalidConfiguration`, in one sentence that never repeats the password.
    public init(_ text: String) throws {
        let url = try OutboxConnectionURL(text, store: "PostgreSQL", schemes: ["postgres", "postgresql"],
                                          example: "postgres://user:password@host:5432/database")
        guard url.hosts.count == 1 else { throw url.invalid("The PostgreSQL URL names several hosts; name one.") }
        guard let user = url.username else { throw url.invalid("The PostgreSQL URL names no user; use postgres://user@host:5432/database.") }
        guard !url.database.isEmpty, !url.database.contains("/") else {
            throw url.invalid("The PostgreSQL URL names no database; add it after the host, as in …@host:5432/database.")
        }
        // An option we do not read must not pass unnoticed: a misspelt `sslmode` would quietly
        // leave TLS at `prefer`.
        if let unknown = url.options.first(where: { $0.name.lowercased() != "sslmode" }) {
            throw url.invalid("The PostgreSQL URL has an unknown option \"\(unknown.name)\"; the one understood is sslmode.")
        }
        let sslMode = url.option("sslmode") ?? "prefer"
        guard ["disable", "prefer", "require"].contains(sslMode) else { throw url.invalid("sslmode must be disable, prefer or require.") }
        self.url = url
        host = url.hosts[0].name
        port = url.hosts[0].port ?? 5432
        username = user
        password = url.password
        database = url.database
        self.sslMode = sslMode
    }

    /// The URL without its password.
    public var description: String { url.description }

    /// Settings for a `PostgresClient` (the pool the store and the application use).
    public var clientConfiguration: PostgresClient.Configuration {
        let tls: PostgresClient.Configuration.TLS = switch sslMode {
        case "disable": .disable
        case "require": .require(.makeClientConfiguration())
        default: .prefer(.makeClientConfiguration())
        }
        return PostgresClient.Configuration(host: host, port: port, username: username, password: password, database: database, tls: tls)
    }

    /// Connects once and disconnects, so a wrong host, port, user, password or database fails now,
    /// in one sentence, instead of as a pool that keeps retrying.
    ///
    /// - Throws: ``OutboxError`` naming what to fix; never the password.
    public func checkConnection(timeout: Duration) async throws {
        let configuration = try makeConnectionConfiguration()
        try await OutboxStoreSupport.checkConnection(
            store: "PostgreSQL", address: "\(host):\(port)", timeout: timeout, map: { PostgresErrors.map($0, operation: "connect") }
        ) {
            let connection = try await PostgresConnection.connect(configuration: configuration, id: 0, logger: Logger(label: "outbox.postgres"))
            try await connection.close()
        }
    }

    /// Settings for a single `PostgresConnection` (the connection check).
    ///
    /// - Throws: ``OutboxError`` when the TLS context cannot be made from the system's defaults.
    public func makeConnectionConfiguration() throws -> PostgresConnection.Configuration {
        let tls: PostgresConnection.Configuration.TLS
        do {
            tls = switch sslMode {
            case "disable": .disable
            case "require": .require(try .init(configuration: .makeClientConfiguration()))
            default: .prefer(try .init(configuration: .makeClientConfiguration()))
            }
        } catch {
            throw OutboxError(code: .invalidConfiguration, operation: "configure TLS",
                              message: "The TLS context for PostgreSQL could not be created; check the system's CA certificates or use sslmode=disable.",
                              underlying: OutboxUnderlyingError(error))
        }
        return PostgresConnection.Configuration(host: host, port: port, username: username, password: password, database: database, tls: tls)
    }
}
