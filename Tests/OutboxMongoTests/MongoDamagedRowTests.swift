import Foundation
import Outbox
@testable import OutboxMongo
import OutboxTestSupport
import OutboxTesting
import Testing

/// Documents damaged by a foreign writer are dead-lettered with their reason; the rest flow.
@Suite("MongoDB damaged documents", .serialized, .enabled(if: TestServer.mongo.shouldRun, "set OUTBOX_MONGO_URL (scripts/test.sh does)"), .closesAtEnd)
struct MongoDamagedRowTests {
    /// A field of the wrong BSON type or a missing field (id, topic, payload, creation time, key,
    /// headers) is damage; the document is still read, so it can be dead-lettered.
    @Test func everyMalformedDocumentIsDeadLetteredAndTheRestFlows() async throws {
        let subject = try await MongoStoreUnderTest(partitionCount: 4)
        atEnd { try? await subject.close() }
        let messages = (0..<8).map { OutboxMessage(topic: "t", key: "k\($0)", text: "message \($0)") }
        try await subject.enqueueCommitted(messages)
        let damage: [(Int, BSONDocument, String)] = [
            (1, ["$set": ["id": .string("not-a-uuid")]], "the id is not a UUID"),
            (2, ["$unset": ["topic": ""]], "the topic is missing or not text"),
            (3, ["$set": ["payload": .string("text, not bytes")]], "the payload is missing or not bytes"),
            (4, ["$set": ["createdAt": .string("yesterday")]], "the creation time is missing or not a time"),
            (5, ["$set": ["key": .int32(7)]], "the key is not a string"),
            (6, ["$set": ["headers": .document(["a": .string("b")])]], "the headers are missing or not bytes"),
        ]
        for (index, update, _) in damage {
            let result = try await subject.mongo.messages.updateMany(["id": .uuid(messages[index].id)], update)
            #expect(result.modified == 1)
        }
        let recorder = RecordingPublisher()
        let running = RunningRelay(OutboxRelay(store: subject.store, publisher: recorder, configuration: .forTesting(), logger: subject.logger))
        try await waitUntil("the healthy messages are published") { recorder.deliveryCount >= 2 }
        try await waitUntil("the damaged documents are dead-lettered") { try await subject.store.status(now: Date()).dead == damage.count }
        try await running.stop()
        #expect(Set(recorder.deliveries.map(\.message.id)) == [messages[0].id, messages[7].id])
        let dead = try await subject.store.deadLetters(limit: 10, afterSequence: nil)
        #expect(dead.count == damage.count)
        for (letter, (_, _, reason)) in zip(dead, damage) {
            #expect(letter.record.lastError?.contains(reason) == true, "\(letter.record.lastError ?? "no reason")")
        }
    }
}
