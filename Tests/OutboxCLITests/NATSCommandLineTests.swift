import Foundation
import Outbox
import OutboxNATS
import OutboxSQLite
import OutboxTestSupport
import OutboxTesting
import Testing

@Suite("CLI with NATS", .enabled(if: TestServer.nats.shouldRun, "set OUTBOX_NATS_URL (scripts/test.sh does)"))
struct NATSCommandLineTests {
    /// `outbox relay --nats-url` drains an outbox into a JetStream stream, in per-key order, and
    /// stops cleanly on SIGTERM; the password in the URL never reaches its output.
    @Test func relayPublishesFromSQLiteToJetStream() async throws {
        let url = try TestServer.nats.requireURL()
        let folder = try TemporaryFolder()
        let suffix = UUID().uuidString.prefix(6).lowercased()
        let streams = try NATSStreams(servers: url)
        try streams.createStream("CLI_\(suffix)", subjects: ["cli.\(suffix).>"])
        defer { try? streams.deleteStream("CLI_\(suffix)") }

        let store = try SQLiteOutboxStore(path: folder.path("app.sqlite"))
        try await store.migrate()
        let messages = (0..<500).map { OutboxMessage(topic: "orders", key: "customer-\($0 % 7)", type: "OrderPlaced", text: "order \($0)") }
        try await store.writer.write { db in try store.enqueue(messages, in: db) }

        // The test server takes any user: the password only has to stay out of the output.
        let withPassword = url.replacingOccurrences(of: "nats://", with: "nats://relay:hunter2@")
        let relay = try OutboxProcess(["relay", "--store", "sqlite://\(folder.path("app.sqlite"))", "--nats-url", withPassword,
                                       "-X", "subject.prefix=cli.\(suffix).", "--log-level", "info"])
        try await waitUntil("the relay drains the outbox") { try await store.status(now: Date()).pending == 0 }
        relay.signal(SIGTERM)
        #expect(try await relay.wait(timeout: .seconds(20)) == 0)
        let log = String(decoding: relay.standardError.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(log.contains("nats://relay:***@"), "\(log)")
        #expect(!log.contains("hunter2"), "the password reached the log: \(log)")

        let stored = try streams.read("CLI_\(suffix)")
        #expect(stored.count == 500)
        #expect(Set(stored.compactMap { $0.headers["outbox-id"] }) == Set(messages.map { OutboxUUIDText.string($0.id) }))
        #expect(stored.allSatisfy { $0.subject == "cli.\(suffix).orders" })
        for key in Set(messages.compactMap(\.key)) {
            let sent = messages.filter { $0.key == key }.map { OutboxUUIDText.string($0.id) }
            let got = stored.filter { $0.headers["outbox-key"] == key }.compactMap { $0.headers["outbox-id"] }
            #expect(got == sent, "order of \(key)")
        }
    }
}
