import Foundation
import OutboxTestSupport
import OutboxTesting
import Testing

/// One-shot commands on every server store print their answer and nothing else: no driver
/// warning, on every run (PostgresNIO warned "run() hasn't been called yet" when the first query
/// came before the client's run() had begun).
@Suite("CLI on servers", .enabled(if: TestServer.serversRequired || TestServer.postgres.url != nil, "set the OUTBOX_*_URL variables (scripts/test.sh does)"))
struct ServerCommandTests {
    @Test(arguments: [TestServer.postgres, TestServer.mariadb, TestServer.mongo])
    func oneShotCommandsPrintOnlyTheirAnswer(server: TestServer) async throws {
        let url = try server.requireURL()
        let migrate = try await OutboxProcess.run(["migrate", "--store", url])
        #expect(migrate.status == 0, "\(migrate.error)")
        #expect(migrate.error.isEmpty, "migrate on \(server.name) wrote to stderr: \(migrate.error)")
        for _ in 0..<5 {
            let status = try await OutboxProcess.run(["status", "--store", url])
            #expect(status.status == 0 && status.output.contains("pending:"), "\(status.error)")
            #expect(status.error.isEmpty, "status on \(server.name) wrote to stderr: \(status.error)")
            let letters = try await OutboxProcess.run(["dead-letters", "list", "--store", url])
            #expect(letters.status == 0, "\(letters.error)")
            #expect(letters.error.isEmpty, "dead-letters on \(server.name) wrote to stderr: \(letters.error)")
        }
    }
}
