// PostgreSQL: the store uses the application's own PostgresClient; enqueue runs on the
// application's connection, inside its transaction, and notifies the relay at commit.
//
//   OUTBOX_POSTGRES_URL=postgres://app:secret@db:5432/shop?sslmode=require swift run PostgresExample [published.jsonl]
import Foundation
import Logging
import Outbox
import OutboxPostgres
import PostgresNIO
import ServiceLifecycle

@main
enum PostgresExample {
    static func main() async throws {
        let logger = Logger(label: "example")
        let url = try PostgresConnectionURL(ProcessInfo.processInfo.environment["OUTBOX_POSTGRES_URL"] ?? "postgres://postgres@127.0.0.1:5432/postgres")
        try await url.checkConnection()  // a wrong host or password fails here, in one sentence
        let client = PostgresClient(configuration: url.clientConfiguration, backgroundLogger: logger)
        // The application's client runs for the application's whole life: start it first, so
        // migrate (and the relay's first heartbeat) find it running.
        let clientRunning = Task { await client.run() }
        let store = try PostgresOutboxStore(client: client, configuration: .init(schema: "public", tablePrefix: "outbox"), logger: logger)
        try await store.migrate()
        try await client.query("CREATE TABLE IF NOT EXISTS orders (id UUID PRIMARY KEY, total_cents BIGINT NOT NULL)", logger: logger)

        // In the application: the order and its message commit together, or not at all. The store's
        // withTransaction is the client's, and its enqueue is one round trip; store.enqueue(_:in:) on a
        // connection of client.withTransaction works too, at two.
        let orderID = UUID()
        try await store.withTransaction(logger: logger) { transaction in
            try await transaction.connection.query("INSERT INTO orders (id, total_cents) VALUES (\(orderID), \(4200))", logger: logger)
            try await transaction.enqueue(OutboxMessage(topic: "orders", key: "customer-7", type: "OrderPlaced", text: #"{"order":"\#(orderID)"}"#))
        }

        // The store (its run() listens for the enqueue notifications on a connection of the
        // client) and the relay run in the application's ServiceGroup.
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
        clientRunning.cancel()
        print("published order \(orderID)")
    }
}
