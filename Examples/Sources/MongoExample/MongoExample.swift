// MongoDB: the store uses the application's client; enqueue runs in the application's
// multi-document transaction. The store's run() keeps a change stream open for wake-ups.
//
//   OUTBOX_MONGO_URL=mongodb://app:secret@db1,db2,db3/shop?replicaSet=rs0 swift run MongoExample [published.jsonl]
import Foundation
import Logging
import Outbox
import OutboxMongo
import ServiceLifecycle

@main
enum MongoExample {
    static func main() async throws {
        let logger = Logger(label: "example")
        let url = try MongoConnectionURL(ProcessInfo.processInfo.environment["OUTBOX_MONGO_URL"] ?? "mongodb://127.0.0.1:27017/shop?replicaSet=rs0")
        try await url.checkConnection()  // a wrong host or a standalone server fails here, in one sentence
        let client = try MongoClient(configuration: url.configuration)
        let store = try MongoOutboxStore(client: client, logger: logger)
        try await store.migrate()  // indexes, partitions; checks the server can run transactions

        let orderID = UUID().uuidString
        try await client.withTransaction { session in  // snapshot reads, majority writes
            try await client.collection("orders").insertOne(["_id": .string(orderID), "total_cents": 4200], session: session)
            try await store.enqueue(OutboxMessage(topic: "orders", key: "customer-7", type: "OrderPlaced", text: #"{"order":"\#(orderID)"}"#),
                                    in: session)
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
        print("published order \(orderID)")
    }
}
