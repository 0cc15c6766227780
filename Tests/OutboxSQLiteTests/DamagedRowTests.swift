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

    /// Any column a foreign writer can damage (SQLite keeps any type in any column): an id that is
    /// not a UUID, a topic that is a number, a payload that is text, a creation time that is
    /// text, a key that is a blob. Each is dead-lettered with its reason; the rest flow.
    @Test func everyDamagedColumnIsDeadLetteredAndTheRestFlows() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("outbox-damaged-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = try SQLiteOutboxStore(path: folder.appendingPathComponent("d.sqlite").path, configuration: .init(partitionCount: 4))
        try await store.migrate()
        let messages = (0..<8).map { OutboxMessage(topic: "t", key: "k\($0)", text: "message \($0)") }
        try await store.writer.write { db in try store.enqueue(messages, in: db) }
        let damage = [
            (1, "id = 'not-a-uuid'", "the id is not a UUID"),
            (2, "topic = x'FF'", "the topic is missing or not text"),
            (3, "payload = 'text, not bytes'", "the payload is missing or not bytes"),
            (4, "created_at = 'yesterday'", "the creation time is missing or not a time"),
            (6, "message_key = x'FF00'", "the key is not text"),
        ]
        try await store.writer.write { db in
            for (index, change, _) in damage {
                try db.execute(sql: "UPDATE outbox_messages SET \(change) WHERE id = ?", arguments: [messages[index].id.uuidString.lowercased()])
                #expect(db.changesCount == 1)
            }
        }
        let recorder = RecordingPublisher()
        let running = RunningRelay(OutboxRelay(store: store, publisher: recorder, configuration: .forTesting(), logger: OutboxStoreConformance.defaultLogger))
        try await waitUntil("the healthy messages are published") { recorder.deliveryCount >= 3 }
        try await waitUntil("the damaged messages are dead-lettered") { try await store.status(now: Date()).dead == damage.count }
        try await running.stop()
        #expect(Set(recorder.deliveries.map(\.message.id)) == Set([0, 5, 7].map { messages[$0].id }))
        let dead = try await store.deadLetters(limit: 10, afterSequence: nil)
        #expect(dead.count == damage.count)
        for (letter, (_, _, reason)) in zip(dead, damage) {
            #expect(letter.record.lastError?.contains(reason) == true, "\(letter.record.lastError ?? "no reason")")
        }
    }
}
