import Foundation
import Outbox
import OutboxAMQP
import OutboxSQLite
import OutboxTestSupport
import OutboxTesting
import Testing

@Suite("CLI with RabbitMQ", .enabled(if: TestServer.rabbitmq.shouldRun, "set OUTBOX_AMQP_URL (scripts/test.sh does)"))
struct AMQPCommandLineTests {
    /// `outbox relay --amqp-url` drains an outbox into a RabbitMQ queue in per-key order and stops
    /// cleanly on SIGTERM; the password in the URL never reaches its output.
    @Test func relayPublishesFromSQLiteToRabbitMQ() async throws {
        let url = try TestServer.rabbitmq.requireURL()
        let folder = try TemporaryFolder()
        let suffix = UUID().uuidString.prefix(6).lowercased()
        let admin = try AMQPAdmin(url: url)
        try admin.declareExchange("cli-\(suffix)-orders", type: "topic")
        try admin.declareQueue("cli-\(suffix)", boundTo: "cli-\(suffix)-orders", bindingKey: "#")
        defer { try? admin.delete(exchange: "cli-\(suffix)-orders", queue: "cli-\(suffix)") }

        let store = try SQLiteOutboxStore(path: folder.path("app.sqlite"))
        try await store.migrate()
        let messages = (0..<500).map { OutboxMessage(topic: "orders", key: "customer-\($0 % 7)", type: "OrderPlaced", text: "order \($0)") }
        try await store.writer.write { db in try store.enqueue(messages, in: db) }

        let relay = try OutboxProcess(["relay", "--store", "sqlite://\(folder.path("app.sqlite"))", "--amqp-url", url,
                                       "-X", "exchange.prefix=cli-\(suffix)-", "--log-level", "info"])
        try await waitUntil("the relay drains the outbox") { try await store.status(now: Date()).pending == 0 }
        relay.signal(SIGTERM)
        #expect(try await relay.wait(timeout: .seconds(20)) == 0)
        let log = String(decoding: relay.standardError.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(log.contains("amqp://guest:***@"), "\(log)")
        #expect(!log.contains("guest:guest"), "the password reached the log: \(log)")

        let received = try admin.take(from: "cli-\(suffix)")
        #expect(received.count == 500)
        #expect(Set(received.compactMap(\.messageID)) == Set(messages.map { OutboxUUIDText.string($0.id) }))
        for key in Set(messages.compactMap(\.key)) {
            let sent = messages.filter { $0.key == key }.map { OutboxUUIDText.string($0.id) }
            let got = received.filter { $0.routingKey == key }.compactMap(\.messageID)
            #expect(got == sent, "order of \(key)")
        }
    }
}
