import Foundation
import OutboxTestSupport
import OutboxTesting
import Testing

/// Passwords and payloads never reach a log line or an error, even at trace level, through
/// migrate, a writer, a relay and a failed login (MariaDB, whose test user has a password).
@Suite("CLI secrets", .enabled(if: TestServer.mariadb.shouldRun, "set OUTBOX_MYSQL_URL (scripts/test.sh does)"))
struct SecretsInLogsTests {
    @Test func passwordsAndPayloadsStayOutOfLogs() async throws {
        let url = try TestServer.mariadb.requireURL()
        let password = try #require(URLComponents(string: url)?.password)
        let folder = try TemporaryFolder()
        var logs = ""

        let migrate = try await OutboxProcess.run(["migrate", "--store", url, "--log-level", "trace"])
        #expect(migrate.status == 0, "\(migrate.error)")
        logs += migrate.output + migrate.error

        let writer = try OutboxProcess(["chaos-writer", "--store", url, "--ledger", folder.path("ledger.txt"), "--rate", "50", "--poison-every", "0",
                                        "--log-level", "trace"])
        try await Task.sleep(for: .seconds(2))
        writer.signal(SIGTERM)
        _ = try await writer.wait(timeout: .seconds(20))
        logs += String(decoding: writer.standardError.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)

        let relay = try OutboxProcess(["relay", "--store", url, "--output", folder.path("out.jsonl"), "--log-level", "trace"])
        try await Task.sleep(for: .seconds(3))
        relay.signal(SIGTERM)
        _ = try await relay.wait(timeout: .seconds(20))
        logs += String(decoding: relay.standardError.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        logs += String(decoding: relay.standardOutput.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let published = (try? String(contentsOfFile: folder.path("out.jsonl"), encoding: .utf8)) ?? ""
        #expect(!published.isEmpty, "the relay published the writer's messages")

        let wrong = url.replacingOccurrences(of: ":\(password)@", with: ":\(password)-wrong@")
        let refused = try await OutboxProcess.run(["status", "--store", wrong, "--log-level", "trace"])
        #expect(refused.status != 0)
        #expect(refused.error.contains("refused the login"), "\(refused.error)")
        logs += refused.output + refused.error

        #expect(!logs.contains(password), "a password reached the logs")
        // The writer's payloads read "chaos <n> key-<k>"; none may appear in a log line.
        #expect(!logs.contains("chaos 1 key-"), "a payload reached the logs")
        #expect(logs.contains("trace") || logs.contains("debug"), "the run really logged at trace level")
    }
}
