import ArgumentParser
import Foundation
import Logging
import Outbox
import OutboxKafka

/// Runs the whole system as real processes — a writer application, relays and a mock Kafka
/// cluster — breaks them while they work, and accounts for every committed message at the end.
struct ChaosCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chaos",
        abstract: "Crash and break a running outbox (relays, Kafka, the database) and account for every message.",
        discussion: """
            Starts `outbox mock-kafka`, --relays `outbox relay` processes and an `outbox chaos-writer`
            application on an empty store. For --seconds it SIGKILLs and restarts relays, takes a
            Kafka broker down and moves partition leaders, injects produce errors, runs
            --restart-command (a database restart) now and then, and with --kill-writer SIGKILLs the
            writer mid-transaction. Every 150th message is poison (larger than Kafka accepts). Then it
            lets the relays drain, consumes the topic and prints one line:
              chaos <store>: committed=… delivered=… lost=0 duplicates=… order_violations=0 dead=…
            and exits non-zero when a message was lost, a key was out of order, or a poison message
            was not dead-lettered.
            """)

    @OptionGroup var options: StoreOptions

    @Option(help: "How long to break things, in seconds.")
    var seconds: Int = 60

    @Option(help: "Relay processes.")
    var relays: Int = 3

    @Option(help: "Writer transactions per second.")
    var rate: Double = 150

    @Option(help: "A shell command that restarts the database server (run now and then).")
    var restartCommand: String?

    @Flag(help: "SIGKILL the writer application now and then (mid-transaction).")
    var killWriter = false

    @Option(help: "The store's name in the summary line (default: the URL's scheme).")
    var name: String?

    @Option(help: "Folder for the ledger and the processes' logs (default: a new temporary folder).")
    var workDirectory: String?

    func validate() throws {
        guard (5...3600).contains(seconds) else { throw ValidationError("--seconds must be between 5 and 3600.") }
        guard (1...8).contains(relays) else { throw ValidationError("--relays must be between 1 and 8.") }
        guard rate > 0 && rate <= 5000 else { throw ValidationError("--rate must be between 0 and 5000.") }
    }

    func run() async throws {
        let logger = try options.makeLogger(label: "outbox.chaos")
        let location = try options.location()
        let url = options.store ?? ProcessInfo.processInfo.environment[StoreLocation.environmentVariable] ?? StoreLocation.defaultURL
        let storeName = name ?? String(url.prefix { $0 != ":" })
        let folder = workDirectory ?? FileManager.default.temporaryDirectory.appendingPathComponent("outbox-chaos-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let ledgerPath = "\(folder)/ledger.txt"
        _ = FileManager.default.createFile(atPath: ledgerPath, contents: nil)
        let progress: @Sendable (String) -> Void = { text in FileHandle.standardError.write(Data("chaos \(storeName): \(text)\n".utf8)) }

        // An empty store: the final counts are this run's.
        try await location.withStore(creating: true, logger: logger) { store in
            try await store.migrate()
            let status = try await store.status(now: Date())
            guard status.pending == 0 && status.dead == 0 && status.deliveredRetained == 0 else {
                throw ValidationError("The store is not empty (\(status.pending) pending, \(status.dead) dead, \(status.deliveredRetained) delivered); run chaos on an empty store.")
            }
        }

        let bootstrapPath = "\(folder)/bootstrap.txt"
        let kafka = ChaosProcess(name: "mock-kafka", arguments: ["mock-kafka", "--brokers", "3", "--topic", "chaos:6", "--bootstrap-file", bootstrapPath,
                                                                 "--commands-from-stdin"], logPath: "\(folder)/mock-kafka.log")
        try kafka.start(withInput: true)
        defer { kafka.send(SIGKILL) }
        var bootstrap = ""
        for _ in 0..<200 where bootstrap.isEmpty {
            bootstrap = (try? String(contentsOfFile: bootstrapPath, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            if bootstrap.isEmpty { try await Task.sleep(for: .milliseconds(50)) }
        }
        guard !bootstrap.isEmpty else { throw ChaosFailure("The mock Kafka cluster did not start; see \(folder)/mock-kafka.log.") }
        // The consumer reads while the run goes: the mock keeps about 5 MB per partition and drops
        // older messages, which a reader started at the end could no longer audit.
        let consumer = try KafkaTopicFollower(bootstrapServers: bootstrap, topic: "chaos", properties: ["log_level": "0"])

        var generation = 0
        func relayProcess(_ index: Int) -> ChaosProcess {
            generation += 1
            return ChaosProcess(name: "relay-\(index)", arguments: [
                "relay", "--store", url, "--kafka-brokers", bootstrap, "--relay-id", "chaos-relay-\(index)-\(generation)",
                "--lease-seconds", "2", "--retention-seconds", "86400", "--log-level", "warning",
                "-X", "max.in.flight.requests.per.connection=1", "-X", "reconnect.backoff.max.ms=500",
            ], logPath: "\(folder)/relay-\(index).log")
        }
        var relayProcesses = try (0..<relays).map { index -> ChaosProcess in
            let relay = relayProcess(index)
            try relay.start()
            return relay
        }
        let writer = ChaosProcess(name: "writer", arguments: [
            "chaos-writer", "--store", url, "--ledger", ledgerPath, "--rate", "\(rate)", "--log-level", "warning",
        ], logPath: "\(folder)/writer.log")
        try writer.start()
        try await Task.sleep(for: .seconds(1))
        for process in relayProcesses + [writer, kafka] where !process.isRunning {
            throw ChaosFailure("\(process.name) exited at start-up; see its log in \(folder).")
        }
        progress("running \(relays) relays, a writer and mock Kafka for \(seconds) s; logs in \(folder)")

        // Break things.
        var relayKills = 0, databaseRestarts = 0, writerKills = 0
        var brokerDown = false
        var lastRestart = ContinuousClock.now
        let end = ContinuousClock.now + .seconds(seconds)
        let started = ContinuousClock.now
        let elapsed: @Sendable () -> String = { "t=\(Int((ContinuousClock.now - started).timeInterval))s" }
        while ContinuousClock.now < end {
            try await Task.sleep(for: .milliseconds(Int64.random(in: 1200...3000)))
            var actions = ["kill-relay", "kill-relay", "produce-errors", "move-leaders"]
            if !brokerDown { actions.append("broker-down") }
            if restartCommand != nil && ContinuousClock.now - lastRestart > .seconds(12) { actions += ["restart-database", "restart-database"] }
            if killWriter { actions += ["kill-writer", "kill-writer"] }
            switch actions.randomElement()! {
            case "kill-relay":
                let index = Int.random(in: 0..<relayProcesses.count)
                await relayProcesses[index].crash()
                relayKills += 1
                progress("\(elapsed()) SIGKILLed relay \(index)")
                try await Task.sleep(for: .milliseconds(Int64.random(in: 200...1500)))
                relayProcesses[index] = relayProcess(index)
                try relayProcesses[index].start()
            case "produce-errors":
                kafka.command("produce-errors 6")
                progress("\(elapsed()) injected 6 produce errors")
            case "broker-down":
                brokerDown = true
                kafka.command("broker-down 1")
                progress("\(elapsed()) took Kafka broker 1 (and the partitions it leads) down")
                try await Task.sleep(for: .milliseconds(Int64.random(in: 500...2000)))
                for partition in 0..<6 { kafka.command("leader chaos \(partition) \(Int.random(in: 2...3))") }
                progress("\(elapsed()) gave every partition a leader again")
            case "move-leaders":
                let low = brokerDown ? 2 : 1
                for partition in 0..<6 { kafka.command("leader chaos \(partition) \(Int.random(in: low...3))") }
                progress("\(elapsed()) moved partition leaders")
            case "restart-database":
                lastRestart = ContinuousClock.now
                let status = await runShell(restartCommand!, logPath: "\(folder)/restart.log")
                guard status == 0 else { throw ChaosFailure("The restart command failed (status \(status)); see \(folder)/restart.log.") }
                databaseRestarts += 1
                progress("\(elapsed()) restarted the database server")
            default:
                await writer.crash()
                writerKills += 1
                progress("\(elapsed()) SIGKILLed the writer application")
                try writer.start()
            }
        }

        // Stop writing, let the relays drain, stop them.
        // A writer transaction stuck on a database that just restarted may not end on SIGTERM.
        await writer.stop(grace: .seconds(5))
        for partition in 0..<6 { kafka.command("leader chaos \(partition) \(Int.random(in: 2...3))") }
        progress("\(elapsed()) writer stopped; draining")
        let runningRelays = relayProcesses
        let brokers = bootstrap
        let report = try await location.withStore(logger: logger) { store -> (ChaosReport, Int) in
            let drainDeadline = ContinuousClock.now + .seconds(240)
            var lastPending = -1
            while true {
                for relay in runningRelays where !relay.isRunning {
                    throw ChaosFailure("\(relay.name) exited on its own; see its log in \(folder).")
                }
                if let status = try? await store.status(now: Date()) {
                    if status.pending == 0 { break }
                    if status.pending != lastPending {
                        progress("\(elapsed()) \(status.pending) pending (\(status.retrying) waiting for a retry)")
                        lastPending = status.pending
                    }
                }
                guard ContinuousClock.now < drainDeadline else {
                    throw ChaosFailure("The relays did not drain the outbox within 240 s; see the logs in \(folder).")
                }
                try await Task.sleep(for: .seconds(1))
            }
            for relay in runningRelays { await relay.stop() }
            let status = try await store.status(now: Date())
            var deadLetters: [OutboxDeadLetter] = []
            while true {
                let page = try await store.deadLetters(limit: 500, afterSequence: deadLetters.last?.record.sequence)
                deadLetters += page
                if page.count < 500 { break }
            }
            progress("\(elapsed()) drained: \(status.deliveredRetained) delivered, \(status.dead) dead; consuming the topic")
            let received = try await consumer.finish(count: status.deliveredRetained, timeout: .seconds(90))
            let ledger = try ChaosLedger(path: ledgerPath)
            let report = ChaosReport(ledger: ledger, deliveredIDs: received.messages.compactMap(\.outboxID), deadLetters: deadLetters,
                                     storeDeliveredCount: status.deliveredRetained, trimmedOffsets: received.trimmedOffsets)
            if !report.lostIDs.isEmpty {
                // A second reader from offset 0 tells a message the broker never had from one the
                // follower missed; the key's neighbours show where in the partition the gap lies.
                let reread = try? await KafkaTopicReader(bootstrapServers: brokers, properties: ["log_level": "0"])
                    .readReporting(topic: "chaos", count: status.deliveredRetained, timeout: .seconds(60))
                let postMortem = ChaosPostMortem(ledger: ledger, lostIDs: report.lostIDs, followed: received.messages, reread: reread?.messages)
                try? postMortem.text.write(toFile: "\(folder)/lost.txt", atomically: true, encoding: .utf8)
                progress("lost messages described in \(folder)/lost.txt")
            }
            return (report, status.dead)
        }.0
        await kafka.stop(grace: .seconds(5))
        print(report.summary(store: storeName, kills: relayKills, restarts: databaseRestarts, writerKills: writerKills))
        guard report.isClean else {
            throw ChaosFailure("The chaos run found problems (see the line above); logs and the ledger are in \(folder).")
        }
    }
}
