import Foundation
import OutboxTestSupport
import OutboxTesting
import Testing

/// `outbox relay` started while its database is down or restarting — an orchestrator starting
/// both at once, a relay restarted during a database restart (a chaos run caught one exiting
/// that way) — waits for the store; what waiting cannot fix still fails at once.
@Suite("Relay start-up", .enabled(if: TestServer.postgres.shouldRun, "set OUTBOX_POSTGRES_URL (scripts/test.sh does)"))
struct RelayStartupTests {
    /// A server of its own (shared with the PostgreSQL restart suite; suites run one at a time),
    /// so the other suites keep theirs while this one is stopped.
    static let port = 55_433

    @Test func relayStartedDuringAnOutageWaitsAndPublishes() async throws {
        let folder = try TemporaryFolder()
        let url = try await ProjectScript.run("start-postgres.sh", environment: ["OUTBOX_POSTGRES_PORT": "\(Self.port)"]) + "?sslmode=disable"
        let migrate = try await OutboxProcess.run(["migrate", "--store", url])
        try #require(migrate.status == 0, "\(migrate.error)")
        let committed = try await writeSomeMessages(to: url, ledger: folder.path("ledger"))
        try #require(!committed.isEmpty, "the writer committed nothing")

        let outage = Task { try await ProjectScript.run("restart-postgres.sh", arguments: ["\(Self.port)", "4"]) }
        try await waitUntil("the server is down", timeout: .seconds(20)) {
            try await OutboxProcess.run(["status", "--store", url]).status != 0
        }
        let relay = try OutboxProcess(["relay", "--store", url, "--output", folder.path("out.jsonl"), "--store-wait-seconds", "60"])
        defer { relay.signal(SIGKILL) }
        _ = try await outage.value
        try await waitUntil("the relay publishes what was committed before the outage", timeout: .seconds(40)) {
            if let status = relay.exitStatus {
                throw ConformanceFailure("the relay exited (status \(status)) instead of waiting for the store")
            }
            let published = (try? String(contentsOfFile: folder.path("out.jsonl"), encoding: .utf8)) ?? ""
            return committed.allSatisfy { published.contains($0) }
        }
        relay.signal(SIGTERM)
        #expect(try await relay.wait(timeout: .seconds(20)) == 0)
    }

    /// Waiting is bounded: a store that never answers fails the relay in one sentence.
    @Test func waitingForAStoreThatNeverAnswersEnds() async throws {
        let started = ContinuousClock.now
        let result = try await OutboxProcess.run(["relay", "--store", "postgres://outbox@127.0.0.1:1/outbox?sslmode=disable",
                                                  "--output", "/dev/null", "--store-wait-seconds", "1"])
        #expect(result.status != 0)
        #expect(result.error.contains("Cannot connect to PostgreSQL at 127.0.0.1:1"), "\(result.error)")
        #expect(ContinuousClock.now - started < .seconds(15))
    }

    /// What waiting cannot fix fails at once, whatever the wait allows.
    @Test func aMissingDatabaseFailsAtOnce() async throws {
        let url = try TestServer.postgres.requireURL()
        guard let slash = url.range(of: "/", options: .backwards) else { throw ConformanceFailure("no database in \(url)") }
        let missing = url[..<slash.lowerBound] + "/no_such_database_\(UUID().uuidString.prefix(6).lowercased())?sslmode=disable"
        let started = ContinuousClock.now
        let result = try await OutboxProcess.run(["relay", "--store", String(missing), "--output", "/dev/null", "--store-wait-seconds", "600"])
        #expect(result.status != 0)
        #expect(result.error.contains("database does not exist"), "\(result.error)")
        #expect(ContinuousClock.now - started < .seconds(15), "the relay waited for a database that does not exist")
    }

    /// Runs the chaos run's writer for about a second and returns the ids it committed.
    private func writeSomeMessages(to url: String, ledger: String) async throws -> [String] {
        let writer = try OutboxProcess(["chaos-writer", "--store", url, "--ledger", ledger, "--rate", "50", "--poison-every", "0"])
        try await Task.sleep(for: .seconds(1))
        writer.signal(SIGTERM)
        _ = try await writer.wait(timeout: .seconds(20))
        let lines = try String(contentsOfFile: ledger, encoding: .utf8).split(separator: "\n")
        return lines.filter { $0.hasPrefix("C ") }.map { $0.dropFirst(2).lowercased() }  // the output writes ids in lower case
    }
}
