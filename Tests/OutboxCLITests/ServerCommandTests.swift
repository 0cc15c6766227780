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

    /// `outbox bench` works in a schema of its own and drops it before it exits. It used to start
    /// the drop in a task from a `defer`, which lost the race with the process's exit after
    /// longer runs (release build, scale scenario, 100,000+ messages): the schema stayed. That race
    /// is not reproducible in a short test run; this checks the drop on every run.
    @Test func benchDropsItsSchemaBeforeItExits() async throws {
        let url = try TestServer.postgres.requireURL()
        let before = try Self.benchSchemas(url)
        let bench = try await OutboxProcess.runLong(["bench", "--store", url, "--scenarios", "enqueue", "--messages", "2000", "--transactions", "20"],
                                                    timeout: .seconds(300))
        #expect(bench.status == 0, "\(bench.error.suffix(2000))")
        #expect(bench.output.contains("enqueue: app tx with outbox"), "\(bench.output)")
        #expect(!bench.error.contains("hasn't been called yet"), "the bench queried before its PostgresClient ran: \(bench.error.prefix(500))")
        let left = try Self.benchSchemas(url).subtracting(before)
        #expect(left.isEmpty, "the bench left its schema behind: \(left.sorted())")
    }

    /// The bench schemas on the PostgreSQL server, read with psql.
    private static func benchSchemas(_ url: String) throws -> Set<String> {
        let psql = Process()
        psql.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        psql.arguments = ["psql", url, "-Atc", "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'outbox_bench%'"]
        let output = Pipe()
        psql.standardOutput = output
        psql.standardError = FileHandle.nullDevice
        try psql.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        psql.waitUntilExit()
        guard psql.terminationStatus == 0 else { throw ConformanceFailure("psql could not list the schemas (status \(psql.terminationStatus))") }
        return Set(String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init))
    }

    /// `outbox admin` serves every server store: the overview lists every partition's lease and a
    /// relay running on the store with its published count; the dead letters and actions answer.
    @Test(arguments: [TestServer.postgres, TestServer.mariadb, TestServer.mongo])
    func adminServesEveryStore(server: TestServer) async throws {
        let url = try server.requireURL()
        let migrate = try await OutboxProcess.run(["migrate", "--store", url])
        try #require(migrate.status == 0, "\(migrate.error)")
        let port = 58_190 + [TestServer.postgres.variable, TestServer.mariadb.variable, TestServer.mongo.variable].firstIndex(of: server.variable)!
        let relay = try OutboxProcess(["relay", "--store", url, "--output", "/dev/null", "--relay-id", "admin-\(port)"])
        defer { relay.signal(SIGKILL) }
        let admin = try OutboxProcess(["admin", "--store", url, "--listen", "127.0.0.1:\(port)", "--sample-seconds", "0.5"])
        defer { admin.signal(SIGKILL) }
        var overview: [String: Any] = [:]
        try await waitUntil("the admin page shows the relay on \(server.name)") {
            if let status = admin.exitStatus { throw ConformanceFailure("outbox admin exited with status \(status)") }
            guard let answer = try? await AdminPageTests.request("http://127.0.0.1:\(port)/api/overview"), answer.status == 200,
                  let json = try JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any] else { return false }
            overview = json
            // Owning partitions may wait for a relay killed by an earlier test to lapse (one lease).
            return ((json["relays"] as? [[String: Any]]) ?? []).contains {
                $0["relayID"] as? String == "admin-\(port)" && !(($0["partitions"] as? [Int]) ?? []).isEmpty
            }
        }
        let leases = (overview["leases"] as? [[String: Any]]) ?? []
        #expect(leases.count == overview["partitionCount"] as? Int && !leases.isEmpty, "every partition's lease is listed")
        #expect(leases.contains { $0["owner"] as? String == "admin-\(port)" && ($0["expiresAt"] as? Double ?? 0) > Date().timeIntervalSince1970 })
        let letters = try await AdminPageTests.request("http://127.0.0.1:\(port)/api/dead-letters?limit=5")
        #expect(letters.status == 200 && letters.body.hasPrefix("["), "\(letters.body)")
        let retry = try await AdminPageTests.request("http://127.0.0.1:\(port)/api/dead-letters/retry", method: "POST", body: #"{"sequences": [9223372036854775807]}"#,
                                                     headers: ["Content-Type": "application/json", "X-Outbox-Admin": "1"])
        #expect(retry.status == 200 && retry.body.contains("\"found\":0"), "\(retry.body)")
        admin.signal(SIGTERM)
        #expect(try await admin.wait(timeout: .seconds(20)) == 0)
        relay.signal(SIGTERM)
        #expect(try await relay.wait(timeout: .seconds(30)) == 0)
    }
}
