import Foundation
import GRDB
import Outbox
@testable import OutboxSQLite
import Testing

@Suite struct SQLiteStoreTests {
    func makeStore(partitions: Int = 8) async throws -> (SQLiteOutboxStore, URL) {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("outbox-sqlite-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let store = try SQLiteOutboxStore(path: folder.appendingPathComponent("s.sqlite").path, configuration: .init(partitionCount: partitions))
        try await store.migrate()
        return (store, folder)
    }

    @Test func enqueueOutsideATransactionIsRefused() async throws {
        let (store, folder) = try await makeStore()
        defer { try? FileManager.default.removeItem(at: folder) }
        let error = await #expect(throws: OutboxError.self) {
            try await store.writer.writeWithoutTransaction { db in
                try store.enqueue(OutboxMessage(topic: "t", text: "x"), in: db)
            }
        }
        #expect(error?.code == .invalidConfiguration)
        #expect(try await store.status(now: Date()).pending == 0)
    }

    @Test func enqueueInAReadOnlyAccessSaysSo() async throws {
        let (store, folder) = try await makeStore()
        defer { try? FileManager.default.removeItem(at: folder) }
        _ = try await store.status(now: Date())  // the partition count is cached: the insert itself is refused
        for reader in [store.writer, try DatabaseQueue(path: folder.appendingPathComponent("s.sqlite").path) as any DatabaseWriter] {
            let error = await #expect(throws: OutboxError.self) {
                try await reader.read { db in try store.enqueue(OutboxMessage(topic: "t", text: "x"), in: db) }
            }
            #expect(error?.description.contains("read-only access") == true, "\(String(describing: error))")
        }
        #expect(try await store.status(now: Date()).pending == 0)
    }

    @Test func enqueueBeforeMigrationNamesTheFix() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("outbox-sqlite-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = try SQLiteOutboxStore(path: folder.appendingPathComponent("s.sqlite").path)
        let error = await #expect(throws: OutboxError.self) {
            try await store.writer.write { db in try store.enqueue(OutboxMessage(topic: "t", text: "x"), in: db) }
        }
        #expect(error?.code == .schemaMismatch)
        #expect(error?.description.contains("outbox migrate") == true)
    }

    /// A schema older than the build is named at status, which a relay command checks before it
    /// starts; a migration of a newer build in the file is accepted.
    @Test func aSchemaOlderThanTheBuildIsNamed() async throws {
        let (store, folder) = try await makeStore()
        defer { try? FileManager.default.removeItem(at: folder) }
        try await store.writer.write { db in
            try db.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('outbox.v99.from-a-newer-build')")
        }
        _ = try await store.status(now: Date())
        let latest = try #require(SQLiteSchema.migrator(prefix: "outbox", partitionCount: 32).migrations.last)
        try await store.writer.write { db in try db.execute(sql: "DELETE FROM grdb_migrations WHERE identifier = ?", arguments: [latest]) }
        let refused = await #expect(throws: OutboxError.self) { try await store.status(now: Date()) }
        #expect(refused?.code == .schemaMismatch)
        #expect(refused?.message.contains("lacks 1 of") == true && refused?.message.contains("outbox migrate") == true, "\(String(describing: refused))")
    }

    @Test func oversizedMessageFailsTheApplicationTransaction() async throws {
        let (store, folder) = try await makeStore()
        defer { try? FileManager.default.removeItem(at: folder) }
        try await store.writer.write { db in try db.execute(sql: "CREATE TABLE orders (id INTEGER PRIMARY KEY)") }
        let limited = try SQLiteOutboxStore(writer: store.writer, configuration: .init(messageLimits: .init(maximumPayloadBytes: 1024)))
        let error = await #expect(throws: OutboxError.self) {
            try await limited.writer.write { db in
                try db.execute(sql: "INSERT INTO orders DEFAULT VALUES")
                try limited.enqueue(OutboxMessage(topic: "t", payload: Array(repeating: 1, count: 1025)), in: db)
            }
        }
        #expect(error?.code == .invalidMessage)
        #expect(try await store.writer.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM orders") } == 0,
                "the business row is rolled back with the message")
    }

    @Test func migratingTwiceKeepsTheFirstPartitionCount() async throws {
        let (store, folder) = try await makeStore(partitions: 8)
        defer { try? FileManager.default.removeItem(at: folder) }
        let again = try SQLiteOutboxStore(writer: store.writer, configuration: .init(partitionCount: 64))
        try await again.migrate()
        #expect(try await again.status(now: Date()).partitionCount == 8)
    }

    /// The relay's queries walk indexes only: their cost depends on the batch, not on the backlog;
    /// with the default table names and with a prefix of the application's.
    @Test(arguments: ["outbox", "shop"]) func relayQueriesUseIndexesNotScans(prefix: String) async throws {
        let (defaultStore, folder) = try await makeStore()
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = try SQLiteOutboxStore(writer: defaultStore.writer, configuration: .init(tablePrefix: prefix))
        try await store.migrate()
        let plans = try await store.writer.read { db in
            try store.statements.relayQueries.map { sql in
                try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + sql.text, arguments: sql.arguments)
                    .map { $0["detail"] as String }.joined(separator: " | ")
            }
        }
        for plan in plans {
            // "SCAN t USING INDEX i" is an ordered index walk that LIMIT stops early; a bare
            // "SCAN t" reads the whole table.
            let steps = plan.components(separatedBy: " | ")
            // <prefix>_leases has one row per partition (at most 4,096), whatever the backlog.
            let scans = steps.filter {
                $0.hasPrefix("SCAN ") && !$0.contains("USING") && !$0.contains("json_each") && !$0.contains("\(prefix)_leases")
            }
            #expect(scans.isEmpty, "full scan in: \(plan)")
            #expect(!plan.contains("TEMP B-TREE"), "sort of the whole result in: \(plan)")
        }
        #expect(plans[0].contains("\(prefix)_messages_pending"), "claim walks the pending index: \(plans[0])")
        #expect(plans[0].contains("\(prefix)_messages_retrying"), "the key check probes the retrying index: \(plans[0])")
    }

    /// Two outboxes with different table prefixes share one file without seeing each other's
    /// messages, partitions or relays.
    @Test func tablePrefixesKeepOutboxesApart() async throws {
        let (shop, folder) = try await makeStore(partitions: 4)
        defer { try? FileManager.default.removeItem(at: folder) }
        let billing = try SQLiteOutboxStore(writer: shop.writer, configuration: .init(tablePrefix: "billing", partitionCount: 8))
        try await billing.migrate()
        try await shop.writer.write { db in
            try shop.enqueue(OutboxMessage(topic: "orders", key: "a", text: "shop"), in: db)
            try billing.enqueue([OutboxMessage(topic: "invoices", key: "a", text: "1"), OutboxMessage(topic: "invoices", key: "b", text: "2")], in: db)
        }
        let (shopStatus, billingStatus) = (try await shop.status(now: Date()), try await billing.status(now: Date()))
        #expect(shopStatus.pending == 1 && shopStatus.partitionCount == 4)
        #expect(billingStatus.pending == 2 && billingStatus.partitionCount == 8)
        let tables = try await shop.writer.read { db in
            try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'billing_%' ORDER BY name")
        }
        #expect(tables == ["billing_leases", "billing_messages", "billing_relays"])
        let invalid = #expect(throws: OutboxError.self) {
            try SQLiteOutboxStore(writer: shop.writer, configuration: .init(tablePrefix: "x; DROP TABLE outbox_messages"))
        }
        #expect(invalid?.code == .invalidConfiguration)
    }
}
