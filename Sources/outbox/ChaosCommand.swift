import ArgumentParser
import Foundation
import Logging
import Outbox

/// Runs the whole system as real processes — a writer application, relays and a broker (a mock
/// Kafka cluster, or a real nats-server) — breaks them while they work, and accounts for every
/// committed message at the end.
struct ChaosCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chaos",
        abstract: "Crash and break a running outbox (relays, the broker, the database) and account for every message.",
        discussion: """
            Starts the broker (`outbox mock-kafka`, or with --publisher nats a nats-server with
            JetStream), --relays `outbox relay` processes, an `outbox chaos-writer` application and
            (Kafka) --consumers `outbox chaos-consumer` inbox consumers in one consumer group, which
            handle the topic into the same store, on an empty store. For --seconds it SIGKILLs and
            restarts relays and consumers, stops consumers gracefully (a rebalance), breaks the broker
            (Kafka: a broker down, partition leaders moved, produce errors; NATS: the server
            restarted, SIGKILLed or down for seconds), runs --restart-command (a database restart)
            now and then, and with --kill-writer SIGKILLs the writer mid-transaction. Every 150th
            message is poison (larger than the broker accepts). Then it lets the relays drain,
            reads the topic (stream) back and prints one line:
              chaos <store>: committed=… delivered=… lost=0 duplicates=… order_violations=0 dead=… …
                handled=… handled_twice=0 not_handled=0 consumer_order_violations=0 consumer_dead=…
            and exits non-zero when a message was lost, a key was out of order, or a poison message
            was not dead-lettered; or, on the consumers' side, a message on the broker was handled
            twice, not at all or out of its key's order, or a consumer's poison message (1 in 256:
            its handler always throws) was not dead-lettered in the inbox.
            """)

    @OptionGroup var options: StoreOptions

    @Option(help: "The broker: kafka (librdkafka's mock cluster), nats (a nats-server the run starts) or amqp (RabbitMQ at --amqp-url).")
    var publisher: BrokerKind = .kafka

    @Option(name: .customLong("amqp-url"), help: "With --publisher amqp: the RabbitMQ broker (env: OUTBOX_AMQP_URL). The run declares exchanges chaos and chaos-poison and queue chaos-all.")
    var amqpURL: String?

    @Option(help: "With --publisher amqp: a shell command that restarts the broker; it is also called with kill, stop and start appended (as scripts/restart-rabbitmq.sh PORT takes them).")
    var brokerCommand: String?

    @Option(help: "How long to break things, in seconds.")
    var seconds: Int = 60

    @Option(help: "Relay processes.")
    var relays: Int = 3

    @Option(help: "Writer transactions per second.")
    var rate: Double = 150

    @Option(help: "Inbox consumer processes (default: 2 with Kafka; the inbox reads Kafka only, so 0 otherwise).")
    var consumers: Int?

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
        if let consumers {
            guard (0...8).contains(consumers) else { throw ValidationError("--consumers must be between 0 and 8.") }
            guard consumers == 0 || publisher == .kafka else {
                throw ValidationError("--consumers needs --publisher kafka: the inbox has a Kafka source only.")
            }
        }
    }

    private func requiredAMQPURL() throws -> String {
        guard let url = amqpURL ?? ProcessInfo.processInfo.environment["OUTBOX_AMQP_URL"] else {
            throw ValidationError("--publisher amqp needs --amqp-url amqp://user:password@host:port (or OUTBOX_AMQP_URL).")
        }
        return url
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
        let consumerCount = consumers ?? (publisher == .kafka ? 2 : 0)
        if consumerCount > 0 {
            try await OpenedStore.open(location, logger: logger).withServices { try await ChaosConsumers.prepare($0) }
        }

        let broker: any ChaosBroker = switch publisher {
        case .kafka: try await ChaosKafka(folder: folder)
        case .nats: try await ChaosNATS(folder: folder)
        case .amqp: try ChaosAMQP(url: try requiredAMQPURL(), command: brokerCommand, folder: folder)
        }
        // Whatever ends the run early (a failed restart command, a relay exiting on its own),
        // no process it started may outlive it: relays left running would keep reconnecting to
        // servers the test scripts stop.
        let children = ChaosChildren()
        do {

            var generation = 0
            func relayProcess(_ index: Int) -> ChaosProcess {
                generation += 1
                return ChaosProcess(name: "relay-\(index)", arguments: [
                    "relay", "--store", url, "--relay-id", "chaos-relay-\(index)-\(generation)",
                    "--lease-seconds", "2", "--retention-seconds", "86400", "--log-level", "warning",
                ] + broker.relayArguments, logPath: "\(folder)/relay-\(index).log")
            }
            var relayProcesses = try (0..<relays).map { index -> ChaosProcess in
                let relay = relayProcess(index)
                try relay.start()
                children.add(relay)
                return relay
            }
            let writer = ChaosProcess(name: "writer", arguments: [
                "chaos-writer", "--store", url, "--ledger", ledgerPath, "--rate", "\(rate)", "--log-level", "warning",
            ] + broker.writerArguments, logPath: "\(folder)/writer.log")
            try writer.start()
            children.add(writer)
            let consumerProcesses = ChaosConsumers(count: consumerCount, storeURL: url, kafkaBrokers: broker.kafkaBootstrap ?? "", folder: folder)
            try consumerProcesses.start(children: children)
            try await Task.sleep(for: .seconds(1))
            for process in relayProcesses + [writer] + consumerProcesses.processes + broker.processes where !process.isRunning {
                throw ChaosFailure("\(process.name) exited at start-up; see its log in \(folder).")
            }
            let consumersText = consumerCount > 0 ? ", \(consumerCount) consumers" : ""
            progress("running \(relays) relays, a writer\(consumersText) and \(broker.name) for \(seconds) s; logs in \(folder)")

            // Break things.
            var relayKills = 0, databaseRestarts = 0, writerKills = 0, consumerKills = 0, consumerStops = 0
            var lastRestart = ContinuousClock.now
            var lastBrokerFault = ContinuousClock.now - .seconds(3600)
            let end = ContinuousClock.now + .seconds(seconds)
            let started = ContinuousClock.now
            let elapsed: @Sendable () -> String = { "t=\(Int((ContinuousClock.now - started).timeInterval))s" }
            while ContinuousClock.now < end {
                try await Task.sleep(for: .milliseconds(Int64.random(in: 1200...3000)))
                var actions = ["kill-relay", "kill-relay"]
                if ContinuousClock.now - lastBrokerFault > broker.faultSpacing { actions += broker.faults }
                if restartCommand != nil && ContinuousClock.now - lastRestart > .seconds(12) { actions += ["restart-database", "restart-database"] }
                if killWriter { actions += ["kill-writer", "kill-writer"] }
                if consumerCount > 0 { actions += ["kill-consumer", "stop-consumer"] }
                // Every run kills a relay by a third of the run, restarts the database (given a
                // command) by half of it and kills a consumer by two thirds: if chance has not, now.
                let runFraction = (ContinuousClock.now - started) / .seconds(seconds)
                if consumerCount > 0 && consumerKills == 0 && runFraction > 2.0 / 3 { actions = ["kill-consumer"] }
                if restartCommand != nil && databaseRestarts == 0 && runFraction > 0.5 { actions = ["restart-database"] }
                if relayKills == 0 && runFraction > 1.0 / 3 { actions = ["kill-relay"] }
                switch actions.randomElement()! {
                case "kill-relay":
                    let index = Int.random(in: 0..<relayProcesses.count)
                    await relayProcesses[index].crash()
                    relayKills += 1
                    progress("\(elapsed()) SIGKILLed relay \(index)")
                    try await Task.sleep(for: .milliseconds(Int64.random(in: 200...1500)))
                    relayProcesses[index] = relayProcess(index)
                    try relayProcesses[index].start()
                    children.add(relayProcesses[index])
                case "restart-database":
                    lastRestart = ContinuousClock.now
                    let status = await runShell(restartCommand!, logPath: "\(folder)/restart.log")
                    guard status == 0 else { throw ChaosFailure("The restart command failed (status \(status)); see \(folder)/restart.log.") }
                    databaseRestarts += 1
                    progress("\(elapsed()) restarted the database server")
                case "kill-consumer":
                    let index = try await consumerProcesses.crashOne()
                    consumerKills += 1
                    progress("\(elapsed()) SIGKILLed consumer \(index) and restarted it")
                case "stop-consumer":
                    let index = try await consumerProcesses.stopOne()
                    consumerStops += 1
                    progress("\(elapsed()) stopped consumer \(index) (it left the group) and restarted it")
                case "kill-writer":
                    await writer.crash()
                    writerKills += 1
                    progress("\(elapsed()) SIGKILLed the writer application")
                    try writer.start()
                case let fault:
                    try await broker.inject(fault, elapsed: elapsed, progress: progress)
                    lastBrokerFault = ContinuousClock.now
                }
            }

            // Stop writing, let the relays drain, stop them.
            // A writer transaction stuck on a database that just restarted may not end on SIGTERM.
            await writer.stop(grace: .seconds(5))
            try await broker.settle()
            progress("\(elapsed()) writer stopped; draining")
            let runningRelays = relayProcesses
            let (kills, restarts, writerKillCount) = (relayKills, databaseRestarts, writerKills)
            let (report, consumerAudit) = try await OpenedStore.open(location, logger: logger).withServices { opened -> (ChaosReport, ChaosConsumerAudit?) in
                let store = opened.store
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
                progress("\(elapsed()) drained: \(status.deliveredRetained) delivered, \(status.dead) dead; reading \(broker.name) back")
                let readBack = try await broker.readBack(count: status.deliveredRetained)
                let ledger = try ChaosLedger(path: ledgerPath)
                let report = ChaosReport(ledger: ledger, deliveredIDs: readBack.ids, deadLetters: deadLetters,
                                         storeDeliveredCount: status.deliveredRetained, trimmedOffsets: readBack.trimmed)
                if !report.lostIDs.isEmpty {
                    let text = await broker.describeLoss(ledger: ledger, lostIDs: report.lostIDs, readBack: readBack, count: status.deliveredRetained)
                    try? text.write(toFile: "\(folder)/lost.txt", atomically: true, encoding: .utf8)
                    progress("lost messages described in \(folder)/lost.txt")
                }
                guard consumerCount > 0 else { return (report, nil) }
                // The relay side first: if the consumers then fail, its figures are still on record.
                let relaySide = report.summary(store: storeName, kills: kills, restarts: restarts, writerKills: writerKillCount)
                progress("\(elapsed()) relays: " + (relaySide.range(of: ": ").map { String(relaySide[$0.upperBound...]) } ?? relaySide))
                let audit = try await Self.awaitConsumers(consumerProcesses, opened: opened, report: report, published: Set(readBack.ids),
                                                     folder: folder, progress: { progress("\(elapsed()) \($0)") })
                return (report, audit)
            }
            await broker.stop()
            let consumerSummary = consumerAudit.map { " " + $0.summary(kills: consumerKills, stops: consumerStops) } ?? ""
            print(report.summary(store: storeName, kills: relayKills, restarts: databaseRestarts, writerKills: writerKills) + consumerSummary)
            guard report.isClean && consumerAudit?.isClean != false else {
                throw ChaosFailure("The chaos run found problems (see the line above); logs and the ledger are in \(folder).")
            }
        } catch {
            await children.killAll()
            await broker.stop()
            throw error
        }
    }

    /// Waits until the consumers have handled (or dead-lettered) every message the broker holds,
    /// stops them, and audits what they wrote.
    private static func awaitConsumers(_ consumers: ChaosConsumers, opened: OpenedStore, report: ChaosReport, published: Set<UUID>,
                                folder: String, progress: @Sendable (String) -> Void) async throws -> ChaosConsumerAudit {
        let expected = report.committedByKey.values.joined().filter(published.contains).count
        let deadline = ContinuousClock.now + .seconds(180)
        var lastFinished = -1
        while true {
            try consumers.checkRunning(folder: folder)
            let (handlings, deadLetters) = try await ChaosConsumers.read(opened)
            let finished = ChaosConsumerAudit.finished(handlings: handlings, deadLetters: deadLetters)
            if finished >= expected { break }
            if finished != lastFinished {
                progress("consumers: \(finished) of \(expected) handled or dead-lettered")
                lastFinished = finished
            }
            guard ContinuousClock.now < deadline else {
                throw ChaosFailure("The consumers did not handle every message within 180 s (\(finished) of \(expected)); see the logs in \(folder).")
            }
            try await Task.sleep(for: .seconds(1))
        }
        await consumers.stopAll()
        let (handlings, deadLetters) = try await ChaosConsumers.read(opened)
        let audit = ChaosConsumerAudit(committedByKey: report.committedByKey, published: published, handlings: handlings, deadLetters: deadLetters)
        let shares = audit.byConsumer.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        progress("consumers done: \(audit.handled) handled (\(shares)), \(audit.dead) dead-lettered in the inbox")
        return audit
    }
}
