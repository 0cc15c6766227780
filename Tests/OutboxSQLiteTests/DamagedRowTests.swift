import Foundation
import GRDB
import Outbox
import OutboxSQLite
import OutboxTesting
import Testing

/// A row whose headers were damaged by something other than swift-outbox is dead-lettered with a
/// reason; it neither stops the relay nor holds back the other messages.
@Suite struct DamagedRowTests {
    @Test func damagedHeadersAreDeadLetteredAndTheRestFlows() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("outbox-damaged-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = try SQLiteOutboxStore(path: folder.appendingPathComponent("d.sqlite").path, configuration: .init(partitionCount: 4))
        try await store.migrate()
        let messages = (0..<5).map { OutboxMessage(topic: "t", key: "k", text: "message \($0)") }
        try await store.writer.write { db in try store.enqueue(messages, in: db) }
        // Damage the second message's headers: a length prefix that runs past the end, then bytes
        // that are not UTF-8.
        try await store.writer.write { db in
            try db.execute(sql: "UPDATE outbox_messages SET headers = ? WHERE id = ?",
                           arguments: [Data([0, 0, 0, 200, 0xFF, 0xFE]), messages[1].id.uuidString.lowercased()])
            #expect(db.changesCount == 1)
            // Well-formed lengths, but a value that is not UTF-8.
            try db.execute(sql: "UPDATE outbox_messages SET headers = ? WHERE id = ?",
                           arguments: [Data([0, 0, 0, 1, 0x61, 0, 0, 0, 2, 0xC3, 0x28]), messages[3].id.uuidString.lowercased()])
            #expect(db.changesCount == 1)
        }
        let recorder = RecordingPublisher()
        let running = RunningRelay(OutboxRelay(store: store, publisher: recorder, configuration: .forTesting(), logger: OutboxStoreConformance.defaultLogger))
        try await waitUntil("the other three messages are published") { recorder.deliveryCount >= 3 }
        try await waitUntil("the damaged messages are dead-lettered") { try await store.status(now: Date()).dead == 2 }
        try await running.stop()
        #expect(Set(recorder.deliveries.map(\.message.id)) == Set(messages.map(\.id)).subtracting([messages[1].id, messages[3].id]))
        let dead = try await store.deadLetters(limit: 10, afterSequence: nil)
        #expect(dead.map(\.record.message.id) == [messages[1].id, messages[3].id])
        #expect(dead.allSatisfy { $0.record.lastError?.contains("damaged") == true }, "\(dead.map(\.record.lastError))")
    }
}
