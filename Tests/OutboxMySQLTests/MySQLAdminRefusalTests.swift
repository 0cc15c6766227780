import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Logging
import Outbox
import OutboxAdmin
@testable import OutboxMySQL
import OutboxTestSupport
import OutboxTesting
import Synchronization
import Testing

/// The admin page's actions against a store that refuses one: the answer says why, as a refusal
/// (409), not as a store that did not answer (503).
@Suite("MySQL/MariaDB admin page refusals", .enabled(if: TestServer.mariadb.shouldRun, "set OUTBOX_MYSQL_URL (scripts/test.sh does)"), .closesAtEnd)
struct MySQLAdminRefusalTests {
    @Test func sendingBackADeadLetterWhoseIDIsPendingAgainIsRefusedWithTheReason() async throws {
        let subject = try await MySQLStoreUnderTest(partitionCount: 1)
        atEnd { try? await subject.close() }
        let (deadSequence, _) = try await subject.deadLetterWhoseIDIsPendingAgain()

        let port = Mutex<Int?>(nil)
        let server = try OutboxAdminServer(store: subject.mysql, address: OutboxListenAddress(host: "127.0.0.1", port: 0), token: nil,
                                           logger: Logger(label: "admin-test")) { bound in port.withLock { $0 = bound } }
        let serving = Task { try await server.run() }
        atEnd { serving.cancel() }
        try await waitUntil("the admin server listens") { port.withLock { $0 } != nil }
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port.withLock { $0 }!)/api/dead-letters/retry")!)
        request.httpMethod = "POST"
        request.httpBody = Data(#"{"sequences": [\#(deadSequence)]}"#.utf8)
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.setValue("1", forHTTPHeaderField: "X-Outbox-Admin")
        let (data, response) = try await URLSession.shared.data(for: request)
        let text = String(decoding: data, as: UTF8.self)
        #expect((response as? HTTPURLResponse)?.statusCode == 409, "\(text)")
        #expect(text.contains("enqueued again") && !text.contains("did not answer"), "\(text)")
        #expect(try await subject.mysql.deadLetters(limit: 10, afterSequence: nil).count == 1, "the dead letter stays")
    }
}
