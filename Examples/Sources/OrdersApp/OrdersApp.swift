// An HTTP service that places orders: POST /orders writes the order and its OrderPlaced message
// in one SQLite transaction; the relay runs in the same ServiceGroup as the HTTP server and
// publishes the message (here to a JSON-lines file). GET /outbox shows the outbox's status; the
// relay's metrics are served for Prometheus on the next port, at /metrics.
//
//   swift run OrdersApp [port] [database-path] [published.jsonl]
//   curl -X POST localhost:8080/orders -d '{"customer":"c-7","totalCents":4200}'
import Foundation
import GRDB
import Hummingbird
import Logging
import Outbox
import OutboxPrometheus
import OutboxSQLite
import ServiceLifecycle

struct PlaceOrder: Decodable {
    var customer: String
    var totalCents: Int
}

struct PlacedOrder: ResponseEncodable {
    var order: String
    var message: String
}

@main
enum OrdersApp {
    static func main() async throws {
        let arguments = CommandLine.arguments
        let logger = Logger(label: "orders")
        let port = arguments.count > 1 ? Int(arguments[1]) ?? 8080 : 8080
        // One line for Prometheus: swift-metrics goes to a registry served at /metrics.
        let metrics = try OutboxMetricsEndpoint.bootstrap(listening: "127.0.0.1:\(port + 1)", logger: logger)
        let store = try SQLiteOutboxStore(path: arguments.count > 2 ? arguments[2] : "orders.sqlite")
        try await store.migrate()
        try await store.writer.write { db in
            try db.execute(sql: "CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY, customer TEXT NOT NULL, total_cents INTEGER NOT NULL)")
        }

        let router = Router()
        router.post("orders") { request, context -> PlacedOrder in
            let order = try await request.decode(as: PlaceOrder.self, context: context)
            guard !order.customer.isEmpty, order.totalCents > 0 else {
                throw HTTPError(.badRequest, message: "An order needs a customer and a positive totalCents.")
            }
            let orderID = UUID().uuidString
            let payload = try JSONEncoder().encode(["order": orderID, "customer": order.customer, "totalCents": String(order.totalCents)])
            // The customer is the key: a customer's orders are published in the order they were placed.
            let message = OutboxMessage(topic: "orders", key: order.customer, type: "OrderPlaced", payload: Array(payload))
            try await store.writer.write { db in
                try db.execute(sql: "INSERT INTO orders (id, customer, total_cents) VALUES (?, ?, ?)",
                               arguments: [orderID, order.customer, order.totalCents])
                try store.enqueue(message, in: db)
            }
            return PlacedOrder(order: orderID, message: message.id.uuidString)
        }
        router.get("outbox") { _, _ -> String in
            let status = try await store.status(now: Date())
            return "pending \(status.pending), dead \(status.dead), relays \(status.relays.count)\n"
        }

        let app = Application(
            router: router,
            configuration: .init(address: .hostname("127.0.0.1", port: port)),
            logger: logger)
        let relay = OutboxRelay(
            store: store,
            publisher: try OutboxJSONLinesPublisher(path: arguments.count > 3 ? arguments[3] : "published.jsonl"),
            configuration: OutboxRelayConfiguration(),
            logger: logger)
        // One group: on SIGTERM the HTTP server stops taking orders first, then the relay publishes what
        // is left (within its grace period) and releases its partitions; the metrics go last.
        let group = ServiceGroup(services: [metrics, store, relay, app], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        try await group.run()
    }
}
