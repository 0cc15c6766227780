import Foundation
import Outbox
import OutboxPostgres
import OutboxTestSupport
import OutboxTesting
import Testing

/// A database restart, on a server of its own so the other suites keep theirs.
@Suite("PostgreSQL restart", .enabled(if: TestServer.postgres.shouldRun, "set OUTBOX_POSTGRES_URL (scripts/test.sh does)"), .closesAtEnd)
struct PostgresRestartTests {
    static let port = 55_433

    @Test func relayAndListenerSurviveAServerRestart() async throws {
        let url = try await ProjectScript.run("start-postgres.sh", environment: ["OUTBOX_POSTGRES_PORT": "\(Self.port)"])
        let subject = try await PostgresStoreUnderTest(partitionCount: 8, url: try PostgresConnectionURL(url + "?sslmode=disable"))
        atEnd { try? await subject.close() }
        let recorder = RecordingPublisher()
        // A long poll interval: after the restart, prompt delivery proves the listener reconnected.
        let running = RunningRelay(OutboxRelay(store: subject.postgres, publisher: recorder,
                                               configuration: .forTesting(pollInterval: .seconds(30)), logger: subject.logger))
        let before = (0..<200).map { OutboxMessage(topic: "t", key: "k\($0 % 10)", text: "before \($0)") }
        try await subject.enqueueCommitted(before)
        try await waitUntil("the first messages are published") { recorder.deliveryCount >= 200 }

        _ = try await ProjectScript.run("restart-postgres.sh", arguments: ["\(Self.port)"])
        let after = (0..<200).map { OutboxMessage(topic: "t", key: "k\($0 % 10)", text: "after \($0)") }
        // The application retries its transaction until the server is back, as it would in production.
        try await waitUntil("the application can write again", timeout: .seconds(30)) {
            (try? await subject.enqueueCommitted(after)) != nil
        }
        try await waitUntil("messages written after the restart are published without waiting for a poll", timeout: .seconds(10)) {
            Set(recorder.deliveries.map(\.message.id)).count >= 400
        }
        try await running.stop()
        let byKey = Dictionary(grouping: before + after) { $0.key }.mapValues { $0.map(\.id) }
        let audit = DeliveryAudit(committedByKey: byKey, deliveredIDs: recorder.deliveries.map(\.message.id))
        #expect(audit.isClean, "across a restart: \(audit)")
    }
}
