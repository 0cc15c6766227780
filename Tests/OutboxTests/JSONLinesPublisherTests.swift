import Foundation
import Outbox
import Testing

@Suite struct JSONLinesPublisherTests {
    @Test func linesComeBackByteExact() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("outbox-\(UUID().uuidString).jsonl").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let publisher = try OutboxJSONLinesPublisher(path: path)
        let messages = [
            OutboxMessage(topic: "orders", key: "k\"\n'", type: "𝄞", payload: Array(0...255),
                          headers: [OutboxHeader("a", "1"), OutboxHeader("a", "2"), OutboxHeader("traceparent", "00-x")]),
            OutboxMessage(topic: "orders", text: "{\"plain\": true}"),
        ]
        let records = messages.enumerated().map { OutboxRecord(message: $1, sequence: Int64($0 + 1), partition: 0) }
        let outcomes = try await publisher.publish(records)
        #expect(outcomes.allSatisfy(\.isDelivered) && outcomes.count == 2)
        let lines = try OutboxJSONLine.read(contentsOf: path)
        #expect(lines.count == 2)
        for (line, message) in zip(lines, messages) {
            #expect(line.id == message.id && line.topic == message.topic && line.key == message.key && line.type == message.type)
            #expect(line.payload == message.payload)
            #expect(line.headers == message.headers)
        }
        #expect(lines.map(\.sequence) == [1, 2])
    }

    @Test func anUnwritableFileIsNamed() {
        #expect(throws: OutboxError.self) { try OutboxJSONLinesPublisher(path: "/no/such/folder/out.jsonl") }
    }

    @Test func aForeignLineIsNamed() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("outbox-\(UUID().uuidString).jsonl").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Data("not json\n".utf8).write(to: URL(fileURLWithPath: path))
        let error = #expect(throws: OutboxError.self) { try OutboxJSONLine.read(contentsOf: path) }
        #expect(error?.description.contains("Line 1") == true)
    }
}
