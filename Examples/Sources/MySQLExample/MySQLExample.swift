// MySQL / MariaDB: the store shares the application's connection pool; enqueue runs on the
// application's connection, inside its transaction, and wakes the relays of this process at commit.
//
//   OUTBOX_MYSQL_URL=mysql://app:secret@db:3306/shop?ssl-mode=REQUIRED swift run MySQLExample [published.jsonl]
import Foundation
import Logging
import Outbox
import OutboxMySQL
import ServiceLifecycle

@main
enum MySQLExample {
    static func main() async throws {
        let logger = Logger(label: "example")
        let url = try MySQLConnectionURL(ProcessInfo.processInfo.environment["OUTBOX_MYSQL_URL"] ?? "mysql://root@127.0.0.1:3306/shop")
        try await url.checkConnection()  // a wrong host or password fails here, in one sentence
        let pool = MySQLConnectionPool(configuration: url.configuration)  // the application's connections
        let store = try MySQLOutboxStore(pool: pool, logger: logger)
        try await store.migrate()
        try await pool.query("CREATE TABLE IF NOT EXISTS orders (id VARCHAR(36) PRIMARY KEY, total_cents BIGINT NOT NULL)")

        let orderID = UUID().uuidString
        try await pool.withTransaction { connection in  // commits, or rolls back on throw
            try await connection.query("INSERT INTO orders (id, total_cents) VALUES (?, ?)", [.text(orderID), .integer(4200)])
            try await store.enqueue(OutboxMessage(topic: "orders", key: "customer-7", type: "OrderPlaced", text: #"{"order":"\#(orderID)"}"#),
                                    in: connection)
        }

        let relay = OutboxRelay(
            store: store,
            publisher: try OutboxJSONLinesPublisher(path: CommandLine.arguments.count > 1 ? CommandLine.arguments[1] : "published.jsonl"),
            configuration: OutboxRelayConfiguration(),
            logger: logger)
        let group = ServiceGroup(services: [store, relay], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        // An example stops once everything is published; an application runs until SIGTERM.
        let stopWhenDrained = Task {
            while try await store.status(now: Date()).pending > 0 { try await Task.sleep(for: .milliseconds(50)) }
            await group.triggerGracefulShutdown()
        }
        try await group.run()
        try await stopWhenDrained.value
        await pool.close()  // the application owns its pool
        print("published order \(orderID)")
    }
}
