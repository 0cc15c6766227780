import Foundation
import Outbox
import OutboxMySQL
import OutboxTestSupport
import OutboxTesting
import Testing

/// A database crash, on a server of its own so the other suites keep theirs.
@Suite("MySQL/MariaDB restart", .enabled(if: TestServer.mariadb.shouldRun, "set OUTBOX_MYSQL_URL (scripts/test.sh does)"), .closesAtEnd)
struct MySQLRestartTests {
    static let port = 53_307

    @Test func relayAndApplicationSurviveAServerCrash() async throws {
        let url = try await ProjectScript.run("start-mariadb.sh", environment: ["OUTBOX_MYSQL_PORT": "\(Self.port)"])
        let subject = try await MySQLStoreUnderTest(partitionCount: 8, configuration: try MySQLConnectionURL(url).configuration)
        atEnd { try? await subject.close() }
        let recorder = RecordingPublisher()
        let running = RunningRelay(OutboxRelay(store: subject.mysql, publisher: recorder,
                                               configuration: .forTesting(pollInterval: .milliseconds(200)), logger: subject.logger))
        let before = (0..<200).map { OutboxMessage(topic: "t", key: "k\($0 % 10)", text: "before \($0)") }
        try await subject.enqueueCommitted(before)
        try await waitUntil("the first messages are published") { recorder.deliveryCount >= 200 }

        // SIGKILL: the server crashes with the relay's connections open.
        _ = try await ProjectScript.run("restart-mariadb.sh", arguments: ["\(Self.port)", "kill"])
        let after = (0..<200).map { OutboxMessage(topic: "t", key: "k\($0 % 10)", text: "after \($0)") }
        // The application retries its transaction until the server is back, as it would in production.
        try await waitUntil("the application can write again", timeout: .seconds(30)) {
            (try? await subject.enqueueCommitted(after)) != nil
        }
        try await waitUntil("messages written after the crash are published", timeout: .seconds(20)) {
            Set(recorder.deliveries.map(\.message.id)).count >= 400
        }
        try await running.stop()
        let byKey = Dictionary(grouping: before + after) { $0.key }.mapValues { $0.map(\.id) }
        let audit = DeliveryAudit(committedByKey: byKey, deliveredIDs: recorder.deliveries.map(\.message.id))
        #expect(audit.isClean, "across a crash: \(audit)")
    }
}
