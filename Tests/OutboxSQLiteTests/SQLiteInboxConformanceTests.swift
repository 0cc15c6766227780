import Foundation
import GRDB
import Outbox
import OutboxSQLite
import OutboxTesting
import Testing

@Suite("SQLite inbox conformance")
struct SQLiteInboxConformanceTests {
    @Test(arguments: OutboxInboxConformance<SQLiteInboxHarness>.Check.allCases)
    func conformance(_ check: OutboxInboxConformance<SQLiteInboxHarness>.Check) async throws {
        try await OutboxInboxConformance(harness: SQLiteInboxHarness()).run(check)
    }
}

/// Each check gets a new database file with a `projection` table the handler writes to.
struct SQLiteInboxHarness: OutboxInboxStoreHarness {
    var name: String { "SQLite" }

    func makeStore() async throws -> SQLiteOutboxStore {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("outbox-inbox-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let store = try SQLiteOutboxStore(path: folder.appendingPathComponent("consumer.sqlite").path)
        try await store.migrateInbox()
        try await store.migrateInbox()
        try await store.writer.write { db in
            try db.execute(sql: "CREATE TABLE projection (seq INTEGER PRIMARY KEY AUTOINCREMENT, row TEXT NOT NULL)")
        }
        return store
    }

    func projecting(into store: SQLiteOutboxStore, after: @escaping @Sendable (OutboxInboxMessage) throws -> Void) -> SQLiteOutboxStore.Handler {
        { message, db in
            try db.execute(sql: "INSERT INTO projection (row) VALUES (?)", arguments: [String(decoding: message.payload, as: UTF8.self)])
            try after(message)
        }
    }

    func projection(of store: SQLiteOutboxStore) async throws -> [String] {
        try await store.writer.read { db in try String.fetchAll(db, sql: "SELECT row FROM projection ORDER BY seq") }
    }

    func close(_ store: SQLiteOutboxStore) async throws {
        try store.writer.close()
        try? FileManager.default.removeItem(atPath: URL(fileURLWithPath: store.writer.path).deletingLastPathComponent().path)
    }
}
