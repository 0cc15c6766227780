import Foundation
public import Logging
import Outbox
public import PostgresNIO

/// A `postgres://user:password@host:port/database?sslmode=…` URL, parsed for postgres-nio.
///
/// `sslmode` may be `disable`, `prefer` (the default) or `require`. The password is kept only to
/// connect: ``description`` never shows it.
public struct PostgresConnectionURL: Sendable, CustomStringConvertible {
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

    /// Parses a URL.
    ///
    /// - Throws: ``OutboxError`` with code `.invalidConfiguration`, in one sentence that never repeats the password.
    public init(_ text: String) throws {
        func invalid(_ message: String) -> OutboxError {
            OutboxError(code: .invalidConfiguration, operation: "parse PostgreSQL URL", message: message)
        }
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
              scheme == "postgres" || scheme == "postgresql"
        else {
            throw invalid("The PostgreSQL URL is malformed; use postgres://user:password@host:5432/database.")
        }
        guard let host = components.host, !host.isEmpty else { throw invalid("The PostgreSQL URL names no host; use postgres://user@host:5432/database.") }
        guard let user = components.user, !user.isEmpty else { throw invalid("The PostgreSQL URL names no user; use postgres://user@host:5432/database.") }
        let database = String(components.path.drop { $0 == "/" })
        guard !database.isEmpty else { throw invalid("The PostgreSQL URL names no database; add it after the host, as in …@host:5432/database.") }
        let sslMode = components.queryItems?.first { $0.name == "sslmode" }?.value ?? "prefer"
        guard ["disable", "prefer", "require"].contains(sslMode) else {
            throw invalid("sslmode must be disable, prefer or require.")
        }
        self.host = host
        port = components.port ?? 5432
        // URLComponents' `user` and `password` are decoded already: decoding them again would turn
        // a password with a literal "%41" (written %2541 in the URL) into "A".
        username = user
        password = components.password
        self.database = database
        self.sslMode = sslMode
    }

    /// The URL without its password.
    public var description: String { "postgres://\(username)@\(host):\(port)/\(database)?sslmode=\(sslMode)" }

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
    public func checkConnection(logger: Logger, timeout: Duration = .seconds(10)) async throws {
        do {
            let connection = try await withThrowingTaskGroup(of: PostgresConnection?.self) { group in
                let configuration = try self.makeConnectionConfiguration()
                group.addTask { try await PostgresConnection.connect(configuration: configuration, id: 0, logger: logger) }
                group.addTask {
                    try await Task.sleep(for: timeout)
                    return nil
                }
                defer { group.cancelAll() }
                return try await group.next()!
            }
            guard let connection else {
                throw OutboxError(code: .storeUnavailable, operation: "connect",
                                  message: "PostgreSQL at \(host):\(port) did not answer within \(timeout); check the host and port.", isRetriable: true)
            }
            try await connection.close()
        } catch {
            let mapped = PostgresErrors.map(error, operation: "connect")
            if let outbox = mapped as? OutboxError, outbox.code == .storeUnavailable {
                throw OutboxError(code: .storeUnavailable, operation: "connect",
                                  message: "Cannot connect to PostgreSQL at \(host):\(port); check the host and port and that the server is up.",
                                  isRetriable: true, underlying: outbox.underlying)
            }
            throw mapped
        }
    }

    /// Settings for a single `PostgresConnection` (the store's listener).
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
