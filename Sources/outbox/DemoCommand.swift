import ArgumentParser
import Foundation
import Logging
import Outbox
import OutboxKafka
import OutboxTesting
import ServiceLifecycle

struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run the whole path on embedded SQLite and an in-process Kafka mock cluster, and verify what arrived.",
        discussion: """
            Concurrent writers place orders, each order and its outbox message in one transaction;
            relays publish the messages to Kafka (librdkafka's mock cluster, started in this process);
            two inbox consumers in one consumer group write each order into a projection table of a
            second database, exactly once. The demo checks that every message arrived at Kafka,
            byte-exact, with its headers and in per-customer order, and that the projection holds
            every order once, in per-customer order. `--sink jsonl` writes a JSON-lines file
            instead of Kafka (no consumers).
            """)

    enum Sink: String, ExpressibleByArgument, CaseIterable {
        case kafka
        case jsonl
    }

    @Option(help: "Where the relays publish: kafka (an in-process mock cluster) or jsonl (a file).")
    var sink: Sink = .kafka

    @Option(help: "Orders (and messages) to write.")
    var messages: Int = 20_000

    @Option(help: "Concurrent writer tasks.")
    var writers: Int = 4

    @Option(help: "Customers; each customer's orders must arrive in order.")
    var customers: Int = 200

    @Option(help: "Relays sharing the store.")
    var relays: Int = 2

    @Option(help: "Folder for the database and the published file (default: a new temporary folder, removed afterwards).")
    var folder: String?

    @Flag(help: "Keep the temporary folder.")
    var keep = false

    @Option(help: "Log level for the relays: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "warning"

    func validate() throws {
        guard (1...5_000_000).contains(messages) else { throw ValidationError("--messages must be between 1 and 5000000.") }
        guard (1...64).contains(writers) else { throw ValidationError("--writers must be between 1 and 64.") }
        guard (1...1_000_000).contains(customers) else { throw ValidationError("--customers must be between 1 and 1000000.") }
        guard (1...16).contains(relays) else { throw ValidationError("--relays must be between 1 and 16.") }
        guard Logger.Level(rawValue: logLevel.lowercased()) != nil else {
            throw ValidationError("Unknown log level '\(logLevel)'; use trace, debug, info, notice, warning, error or critical.")
        }
    }

    func run() async throws {
        var logger = Logger(label: "outbox.demo") { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = Logger.Level(rawValue: logLevel.lowercased())!
        let workspace = try DemoWorkspace(folder: folder)
        defer { if !(keep || folder != nil) { workspace.remove() } }

        print("outbox demo: \(messages) orders from \(writers) writers for \(customers) customers, \(relays) relays, embedded SQLite → \(sink == .kafka ? "Kafka (in-process mock cluster)" : "JSON lines")")
        print("folder: \(workspace.folder.path)")
        // Opened as every command opens a store; the embedded default is a SQLite file.
        let location = try StoreLocation(url: "sqlite://\(workspace.databasePath)")
        let application = try await OpenedStore.open(location, settings: StoreSettings(creating: true), logger: logger)
        try await application.store.migrate()
        try await application.createBusinessTable()
        let existing = try await application.store.status(now: Date()).pending
        guard existing == 0 else {
            throw OutboxError(code: .invalidConfiguration, operation: "demo",
                              message: "The demo store already has \(existing) pending messages; use an empty --folder.")
        }

        let destination = try DemoDestination(sink: sink, workspace: workspace, logger: logger)
        if let bootstrap = destination.kafkaBootstrap { print("kafka: \(bootstrap), topic \(DemoDestination.topic)") }
        let publisher = CountingPublisher(destination.publisher)
        // Each relay opens the store on its own, as relays in other processes would.
        var relayServices: [any Service] = []
        for index in 0..<relays {
            let opened = try await OpenedStore.open(location, settings: StoreSettings(wakeUps: true), logger: logger)
            relayServices += opened.services
            relayServices.append(OutboxRelay(
                store: opened.store,
                publisher: publisher,
                configuration: OutboxRelayConfiguration(relayID: "demo-relay-\(index + 1)", leaseDuration: .seconds(5),
                                                        heartbeatInterval: .seconds(1)),
                logger: logger))
        }
        // The publisher comes first: services stop in reverse order, so the relays finish before it flushes.
        let group = ServiceGroup(services: destination.services + relayServices, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        let started = ContinuousClock.now
        let relaying = Task { try await group.run() }

        var consumers: DemoConsumers?
        var consuming: Task<Void, any Error>?
        let consumerGroup: ServiceGroup?
        if let bootstrap = destination.kafkaBootstrap {
            let demoConsumers = try await DemoConsumers(bootstrapServers: bootstrap, workspace: workspace, count: 2, logger: logger)
            let group = ServiceGroup(services: demoConsumers.services, logger: logger)
            consumers = demoConsumers
            consumerGroup = group
            consuming = Task { try await group.run() }
        } else {
            consumerGroup = nil
        }

        let writer = DemoWriter(store: application, messages: messages, writers: writers, customers: customers)
        let progress = Task { await showProgress(writer: writer, publisher: publisher) }
        let written: DemoWriter.Written
        do {
            written = try await writer.run()
            try await waitForDelivery(of: messages, publisher: publisher, relaying: relaying)
        } catch {
            progress.cancel()
            await group.triggerGracefulShutdown()
            _ = try? await relaying.value
            await consumerGroup?.triggerGracefulShutdown()
            _ = try? await consuming?.value
            throw error
        }
        let elapsed = ContinuousClock.now - started
        progress.cancel()
        await progress.value
        await group.triggerGracefulShutdown()
        try await relaying.value

        var projection: DemoReport.Projection?
        if let consumers, let consumerGroup {
            let deadline = ContinuousClock.now + .seconds(max(60, messages / 500))
            while try await consumers.handledCount() < messages && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(50))
            }
            await consumerGroup.triggerGracefulShutdown()
            try await consuming?.value
            let handled = try await consumers.handled()
            projection = DemoReport.Projection(ids: handled.ids, byConsumer: handled.byConsumer)
        }
        let delivered = try await destination.readBack(count: messages)
        let report = DemoReport(written: written, delivered: delivered, projection: projection, latencies: publisher.latencies, elapsed: elapsed)
        print(report.summary(relays: relays, store: "sqlite://\(workspace.databasePath)", published: destination.description))
        if !report.isClean { throw ExitCode.failure }
    }

    private func waitForDelivery(of count: Int, publisher: CountingPublisher, relaying: Task<Void, any Error>) async throws {
        let deadline = ContinuousClock.now + .seconds(max(120, count / 500))
        while publisher.delivered < count {
            if ContinuousClock.now > deadline {
                throw OutboxError(code: .publisherUnavailable, operation: "demo",
                                  message: "Only \(publisher.delivered) of \(count) messages were published before the demo's deadline; rerun with --log-level info to see why.")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    private func showProgress(writer: DemoWriter, publisher: CountingPublisher) async {
        let interactive = isatty(STDOUT_FILENO) != 0
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(interactive ? 250 : 1000))
            let line = "  written \(writer.committed)/\(messages) · published \(publisher.delivered)"
            if interactive {
                FileHandle.standardOutput.write(Data("\r\(line)".utf8))
            } else {
                print(line)
            }
        }
        if interactive { print("") }
    }
}

/// The demo's folder: a fresh temporary one unless the user names one.
struct DemoWorkspace {
    let folder: URL
    var databasePath: String { folder.appendingPathComponent("demo.sqlite").path }
    var publishedPath: String { folder.appendingPathComponent("published.jsonl").path }

    init(folder: String?) throws {
        let url = folder.map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("outbox-demo-\(UUID().uuidString.prefix(8).lowercased())")
        do {
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        } catch {
            throw OutboxError(code: .invalidConfiguration, operation: "demo",
                              message: "Cannot create the demo folder \(url.path); choose a writable --folder.")
        }
        guard FileManager.default.isWritableFile(atPath: url.path) else {
            throw OutboxError(code: .invalidConfiguration, operation: "demo", message: "The demo folder \(url.path) is not writable; choose another --folder.")
        }
        if FileManager.default.fileExists(atPath: url.appendingPathComponent("published.jsonl").path) {
            throw OutboxError(code: .invalidConfiguration, operation: "demo",
                              message: "The folder \(url.path) already holds a demo run; choose an empty --folder.")
        }
        self.folder = url
    }

    func remove() { try? FileManager.default.removeItem(at: folder) }
}
