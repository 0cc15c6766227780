import Foundation
import OutboxTesting

/// A server (database or broker) the suites use, found through an environment variable that the test
/// command (scripts/test.sh) sets after starting the server with the project's own script.
///
/// A suite runs when the URL is set, or when `OUTBOX_REQUIRE_SERVERS=1` (CI sets it): then a
/// missing URL fails the suite loudly instead of skipping it.
public struct TestServer: Sendable {
    /// The server's name in messages, e.g. "PostgreSQL".
    public let name: String
    /// The environment variable holding its URL, e.g. `OUTBOX_POSTGRES_URL`.
    public let variable: String
    /// The script that starts one, e.g. `scripts/start-postgres.sh`.
    public let script: String

    public static let postgres = TestServer(name: "PostgreSQL", variable: "OUTBOX_POSTGRES_URL", script: "scripts/start-postgres.sh")
    public static let mariadb = TestServer(name: "MariaDB", variable: "OUTBOX_MYSQL_URL", script: "scripts/start-mariadb.sh")
    public static let mongo = TestServer(name: "The MongoDB-compatible server", variable: "OUTBOX_MONGO_URL", script: "scripts/start-mongo.sh")
    public static let nats = TestServer(name: "NATS", variable: "OUTBOX_NATS_URL", script: "scripts/start-nats.sh")
    public static let rabbitmq = TestServer(name: "RabbitMQ", variable: "OUTBOX_AMQP_URL", script: "scripts/start-rabbitmq.sh")

    /// Whether the run must have every server (`OUTBOX_REQUIRE_SERVERS=1`).
    public static var serversRequired: Bool { ProcessInfo.processInfo.environment["OUTBOX_REQUIRE_SERVERS"] == "1" }

    /// The URL, when set and not empty.
    public var url: String? { ProcessInfo.processInfo.environment[variable].flatMap { $0.isEmpty ? nil : $0 } }

    /// Run the suite when a server is configured, or when one is required (it then fails loudly).
    public var shouldRun: Bool { url != nil || Self.serversRequired }

    /// The URL, or a failure naming the variable and the script that starts the server.
    public func requireURL() throws -> String {
        guard let url else {
            throw ConformanceFailure("\(variable) is not set and OUTBOX_REQUIRE_SERVERS=1: start \(name) with \(script) (scripts/test.sh does).")
        }
        return url
    }
}
