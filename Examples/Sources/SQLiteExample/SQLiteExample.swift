// The embedded default: an order and its message commit together in SQLite, and a relay in the
// same process publishes it (here to a JSON-lines file; use KafkaPublisher for Kafka).
//
//   swift run SQLiteExample [database-path] [published.jsonl]
import Foundation
import GRDB
import Logging
import Outbox
import OutboxSQLite
import ServiceLifecycle

@main
enum SQLiteExample {
    static func main() async throws {
        let arguments = CommandLine.arguments
        let logger = Logger(label: "example")
        let store = try SQLiteOutboxStore(path: arguments.count > 1 ? arguments[1] : "shop.sqlite")
        try await store.migrate()
        try await store.writer.write { db in
            try db.execute(sql: "CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY, total_cents INTEGER NOT NULL)")
        }

        // In the application: the order and its message commit together, or not at all.
        let orderID = UUID().uuidString
        try await store.writer.write { db in
            try db.execute(sql: "INSERT INTO orders (id, total_cents) VALUES (?, ?)", arguments: [orderID, 4200])
            try store.enqueue(OutboxMessage(topic: "orders", key: "customer-7", type: "OrderPlaced", text: #"{"order":"\#(orderID)"}"#), in: db)
        }

        // The relay and the store are Services: run them in the application's ServiceGroup.
        let relay = OutboxRelay(
            store: store,
            publisher: try OutboxJSONLinesPublisher(path: arguments.count > 2 ? arguments[2] : "published.jsonl"),
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
        print("published order \(orderID)")
    }
}
