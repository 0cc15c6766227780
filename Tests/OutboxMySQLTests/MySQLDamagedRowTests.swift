import Foundation
import Outbox
@testable import OutboxMySQL
import OutboxTestSupport
import OutboxTesting
import Testing

/// Rows damaged by a foreign writer are dead-lettered with their reason; the rest flow.
@Suite("MySQL/MariaDB damaged rows", .enabled(if: TestServer.mariadb.shouldRun, "set OUTBOX_MYSQL_URL (scripts/test.sh does)"), .closesAtEnd)
struct MySQLDamagedRowTests {
    /// The text columns are binary here, so bytes that are not UTF-8 are what a foreign writer can
    /// leave in them; the headers can hold any bytes.
    @Test func everyDamagedColumnIsDeadLetteredAndTheRestFlows() async throws {
        let subject = try await MySQLStoreUnderTest(partitionCount: 4)
        atEnd { try? await subject.close() }
        let messages = (0..<6).map { OutboxMessage(topic: "t", key: "k\($0)", type: "T", text: "message \($0)") }
        try await subject.enqueueCommitted(messages)
        let damage: [(Int, String, String)] = [
            (1, "topic = x'FF'", "the topic is not UTF-8 text"),
            (2, "message_key = x'FF00'", "the key is not UTF-8 text"),
            (3, "message_type = x'C328'", "the type is not UTF-8 text"),
            (4, "headers = x'000000C8FFFE'", "the headers (6 bytes) are not an outbox header encoding"),
        ]
        for (index, change, _) in damage {
            let result = try await subject.application.query("UPDATE `\(subject.prefix)_messages` SET \(change) WHERE id = ?",
                                                             [.bytes(messages[index].id.bytes)])
            #expect(result.affectedRows == 1)
        }
        let recorder = RecordingPublisher()
        let running = RunningRelay(OutboxRelay(store: subject.store, publisher: recorder, configuration: .forTesting(), logger: subject.logger))
        try await waitUntil("the healthy messages are published") { recorder.deliveryCount >= 2 }
        try await waitUntil("the damaged messages are dead-lettered") { try await subject.store.status(now: Date()).dead == damage.count }
        try await running.stop()
        #expect(Set(recorder.deliveries.map(\.message.id)) == [messages[0].id, messages[5].id])
        let dead = try await subject.store.deadLetters(limit: 10, afterSequence: nil)
        #expect(dead.map(\.record.message.id) == damage.map { messages[$0.0].id })
        for (letter, (_, _, reason)) in zip(dead, damage) {
            #expect(letter.record.lastError?.contains(reason) == true, "\(letter.record.lastError ?? "no reason")")
        }
    }
}
