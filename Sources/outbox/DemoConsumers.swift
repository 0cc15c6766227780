import Foundation
import GRDB
import Logging
import Outbox
import OutboxKafka
import OutboxSQLite
import ServiceLifecycle

/// The demo's consumer side: two inbox consumers in one Kafka consumer group write each order
/// into a projection table of a second database (`projection.sqlite`), exactly once, in the
/// transaction that records the message in the inbox.
struct DemoConsumers {
    static let group = "order-projection"

    let store: SQLiteOutboxStore
    let services: [any Service]

    init(bootstrapServers: String, workspace: DemoWorkspace, count: Int, logger: Logger) async throws {
        store = try SQLiteOutboxStore(path: workspace.folder.appendingPathComponent("projection.sqlite").path)
        try await store.migrateInbox()
        try await store.writer.write { db in
            try db.execute(sql: """
                CREATE TABLE IF NOT EXISTS customer_orders (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT, customer TEXT, order_message TEXT NOT NULL, consumer TEXT NOT NULL)
                """)
        }
        var services: [any Service] = []
        for index in 1...count {
            let name = "consumer-\(index)"
            let source = try KafkaInboxSource(bootstrapServers: bootstrapServers, group: Self.group, topics: [DemoDestination.topic],
                                              properties: ["session.timeout.ms": "6000", "heartbeat.interval.ms": "500"])
            services.append(OutboxInboxConsumer(
                store: store, source: source, configuration: OutboxInboxConfiguration(group: Self.group, commitInterval: .milliseconds(200)),
                logger: logger
            ) { message, db in
                try db.execute(sql: "INSERT INTO customer_orders (customer, order_message, consumer) VALUES (?, ?, ?)",
                               arguments: [message.key, message.outboxID?.uuidString ?? message.identity, name])
            })
        }
        self.services = services
    }

    /// Rows in the projection.
    func handledCount() async throws -> Int {
        try await store.writer.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM customer_orders") ?? 0 }
    }

    /// The projection as the audit reads it: message ids in the order they were handled, and
    /// how many rows each consumer wrote.
    func handled() async throws -> (ids: [UUID], byConsumer: [String: Int]) {
        try await store.writer.read { db in
            let ids = try String.fetchAll(db, sql: "SELECT order_message FROM customer_orders ORDER BY seq").compactMap { UUID(uuidString: $0) }
            let counts = try Row.fetchAll(db, sql: "SELECT consumer, count(*) AS n FROM customer_orders GROUP BY consumer ORDER BY consumer")
            return (ids, Dictionary(uniqueKeysWithValues: counts.map { ($0["consumer"] as String, $0["n"] as Int) }))
        }
    }
}
