import Foundation
import GRDB
import Outbox
import OutboxSQLite
import OutboxTesting

/// Each conformance check gets a new database file in a temporary folder.
struct SQLiteHarness: OutboxStoreHarness {
    var name: String { "SQLite" }
    var wakeUpBound: Duration { .seconds(2) }

    func makeStore() async throws -> any OutboxStoreUnderTest {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("outbox-sqlite-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let store = try SQLiteOutboxStore(path: folder.appendingPathComponent("outbox.sqlite").path,
                                          configuration: .init(partitionCount: 16, messageLimits: OutboxStoreConformance.messageLimits))
        try await store.migrate()
        try await store.writer.write { db in
            try db.execute(sql: "CREATE TABLE orders (id TEXT PRIMARY KEY, note TEXT NOT NULL)")
        }
        return SQLiteStoreUnderTest(sqlite: store, folder: folder)
    }
}

struct SQLiteStoreUnderTest: OutboxStoreUnderTest {
    let sqlite: SQLiteOutboxStore
    let folder: URL
    var store: any OutboxStore { sqlite }

    func enqueueCommitted(_ messages: [OutboxMessage]) async throws {
        try await sqlite.writer.write { db in
            try db.execute(sql: "INSERT INTO orders (id, note) VALUES (?, ?)", arguments: [UUID().uuidString, "order"])
            try sqlite.enqueue(messages, in: db)
        }
    }

    func enqueueRolledBack(_ messages: [OutboxMessage]) async throws {
        struct Rollback: Error {}
        do {
            try await sqlite.writer.write { db in
                try db.execute(sql: "INSERT INTO orders (id, note) VALUES (?, ?)", arguments: [UUID().uuidString, "order"])
                try sqlite.enqueue(messages, in: db)
                throw Rollback()
            }
        } catch is Rollback {}
    }

    func close() async throws {
        try sqlite.writer.close()
        try? FileManager.default.removeItem(at: folder)
    }
}
