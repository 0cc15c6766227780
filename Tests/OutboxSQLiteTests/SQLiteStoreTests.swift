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

    @Test func oversizedMessageFailsTheApplicationTransaction() async throws {
        let (store, folder) = try await makeStore()
        defer { try? FileManager.default.removeItem(at: folder) }
        try await store.writer.write { db in try db.execute(sql: "CREATE TABLE orders (id INTEGER PRIMARY KEY)") }
        let limited = SQLiteOutboxStore(writer: store.writer, configuration: .init(messageLimits: .init(maximumPayloadBytes: 1024)))
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
        let again = SQLiteOutboxStore(writer: store.writer, configuration: .init(partitionCount: 64))
        try await again.migrate()
        #expect(try await again.status(now: Date()).partitionCount == 8)
    }

    /// The relay's queries walk indexes only: their cost depends on the batch, not on the backlog.
    @Test func relayQueriesUseIndexesNotScans() async throws {
        let (store, folder) = try await makeStore()
        defer { try? FileManager.default.removeItem(at: folder) }
        let plans = try await store.writer.read { db in
            try SQLiteOutboxStore.relayQueries.map { sql in
                try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + sql.text, arguments: sql.arguments)
                    .map { $0["detail"] as String }.joined(separator: " | ")
            }
        }
        for plan in plans {
            // "SCAN t USING INDEX i" is an ordered index walk that LIMIT stops early; a bare
            // "SCAN t" reads the whole table.
            let steps = plan.components(separatedBy: " | ")
            // outbox_leases has one row per partition (at most 4,096), whatever the backlog.
            let scans = steps.filter {
                $0.hasPrefix("SCAN ") && !$0.contains("USING") && !$0.contains("json_each") && !$0.contains("outbox_leases")
            }
            #expect(scans.isEmpty, "full scan in: \(plan)")
            #expect(!plan.contains("TEMP B-TREE"), "sort of the whole result in: \(plan)")
        }
        #expect(plans[0].contains("outbox_messages_pending"), "claim walks the pending index: \(plans[0])")
        #expect(plans[0].contains("outbox_messages_retrying"), "the key check probes the retrying index: \(plans[0])")
    }
}
