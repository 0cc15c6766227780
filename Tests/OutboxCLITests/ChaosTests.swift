import Foundation
import OutboxTestSupport
import OutboxTesting
import Testing

/// `outbox chaos` on every store, and on NATS: real processes (writer, three relays, the broker and,
/// with Kafka, two inbox consumers), crashed and broken while they work; every committed message
/// must be accounted for, and with Kafka handled by the consumers exactly once, in key order. Each store gets a
/// server of its own, so the restarts do not disturb other suites.
@Suite("Chaos", .serialized, .enabled(if: TestServer.serversRequired || TestServer.postgres.url != nil, "set OUTBOX_REQUIRE_SERVERS=1 or the OUTBOX_*_URL variables (scripts/test.sh does)"))
struct ChaosTests {
    @Test func sqliteWithTheApplicationKilledMidTransaction() async throws {
        let folder = try TemporaryFolder()
        try await expectClean(store: "sqlite://\(folder.path("chaos.sqlite"))", name: "sqlite", extra: ["--kill-writer"])
    }

    /// A run that ends early (here: its restart command fails) leaves no process behind: relays
    /// left running kept reconnecting to a stopped broker after a failed RabbitMQ run.
    @Test func aRunThatFailsLeavesNoProcessBehind() async throws {
        let folder = try TemporaryFolder()
        let store = folder.path("orphans.sqlite")
        let result = try await OutboxProcess.runLong(
            ["chaos", "--store", "sqlite://\(store)", "--name", "orphans", "--seconds", "40", "--restart-command", "false",
             "--work-directory", folder.path("work")], timeout: .seconds(300))
        #expect(result.status != 0)
        #expect(result.error.contains("The restart command failed"), "\(result.error)")
        try await waitUntil("no process of the run is left", timeout: .seconds(10)) {
            try await ProjectScript.processCount(matching: store) == 0
        }
    }

    @Test func postgresWithServerRestarts() async throws {
        let url = try await ProjectScript.run("start-postgres.sh", environment: ["OUTBOX_POSTGRES_PORT": "55434"])
        try await expectClean(store: url + "?sslmode=disable", name: "postgres", extra: ["--restart-command", "scripts/restart-postgres.sh 55434"])
    }

    @Test func mariadbWithServerCrashes() async throws {
        let url = try await ProjectScript.run("start-mariadb.sh", environment: ["OUTBOX_MYSQL_PORT": "53308"])
        try await expectClean(store: url, name: "mariadb", extra: ["--restart-command", "scripts/restart-mariadb.sh 53308 kill"])
    }

    @Test func mongodbWithServerCrashes() async throws {
        let url = try await ProjectScript.run("start-mongo.sh", environment: ["OUTBOX_MONGO_PORT": "57018"])
        // The test server is single-threaded Python: a gentler write rate.
        try await expectClean(store: url, name: "mongodb", extra: ["--rate", "40", "--restart-command", "scripts/restart-mongo.sh 57018 kill"])
    }

    /// NATS JetStream as the broker: the run starts its own nats-server and restarts, SIGKILLs and
    /// stops it. The stream drops what a killed relay publishes again (Nats-Msg-Id), so the
    /// stream must hold no duplicate at all.
    @Test func natsWithServerCrashesKeepsNoDuplicates() async throws {
        let folder = try TemporaryFolder()
        let summary = try await expectClean(store: "sqlite://\(folder.path("chaos-nats.sqlite"))", name: "sqlite-nats",
                                            extra: ["--publisher", "nats"])
        #expect(summary.contains(" duplicates=0 "), "the stream holds duplicates: \(summary)")
    }

    /// RabbitMQ as the broker, on a broker of its own that the run restarts, SIGKILLs and stops;
    /// poison goes to an exchange no queue is bound to (unroutable, so dead-lettered).
    @Test func rabbitmqWithBrokerCrashes() async throws {
        let url = try await ProjectScript.run("start-rabbitmq.sh", environment: ["OUTBOX_AMQP_PORT": "55674"])
        let folder = try TemporaryFolder()
        try await expectClean(store: "sqlite://\(folder.path("chaos-amqp.sqlite"))", name: "sqlite-amqp",
                              extra: ["--publisher", "amqp", "--amqp-url", url, "--broker-command", "scripts/restart-rabbitmq.sh 55674"])
        _ = try? await ProjectScript.run("restart-rabbitmq.sh", arguments: ["55674", "stop"])
    }

    @discardableResult
    private func expectClean(store: String, name: String, extra: [String]) async throws -> String {
        let result = try await OutboxProcess.runLong(
            ["chaos", "--store", store, "--name", name, "--seconds", "30"] + extra, timeout: .seconds(420))
        let summary = result.output.split(separator: "\n").first { $0.hasPrefix("chaos \(name):") }.map(String.init) ?? ""
        // The summary line goes to the test log as the issue asks: one line per store.
        print(summary)
        #expect(result.status == 0, "\(summary)\n\(result.error.suffix(3000))")
        #expect(summary.contains(" lost=0 ") && summary.contains(" order_violations=0 "), "\(summary)")
        #expect(summary.contains(" poison_not_dead=0 ") && summary.contains(" dead_not_poison=0 "), "\(summary)")
        #expect(figure("committed", in: summary) > 500, "the writer committed too little to prove anything: \(summary)")
        #expect(figure("relay_kills", in: summary) > 0, "no relay was killed: \(summary)")
        if extra.contains("--restart-command") {
            #expect(figure("db_restarts", in: summary) > 0, "the database was never restarted: \(summary)")
        }
        if !extra.contains("--publisher") {
            // The inbox consumers (Kafka only): every message on the broker handled once, in key
            // order, the consumer's poison dead-lettered in the inbox.
            #expect(summary.contains(" handled_twice=0 ") && summary.contains(" not_handled=0 ") && summary.contains(" consumer_order_violations=0 "),
                    "\(summary)")
            #expect(figure("handled", in: summary) + figure("consumer_dead", in: summary) == figure("delivered", in: summary), "\(summary)")
            #expect(figure("consumer_dead", in: summary) == figure("consumer_poison", in: summary), "\(summary)")
            #expect(figure("consumer_kills", in: summary) > 0, "no consumer was killed: \(summary)")
        }
        return summary
    }

    /// The number after `name=` in the summary line, or -1.
    private func figure(_ name: String, in summary: String) -> Int {
        summary.split(separator: " ").first { $0.hasPrefix("\(name)=") }.flatMap { Int($0.dropFirst(name.count + 1)) } ?? -1
    }
}
