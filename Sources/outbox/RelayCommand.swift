import ArgumentParser
import Foundation
import Logging
import Outbox
import OutboxKafka
import ServiceLifecycle

struct RelayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "relay",
        abstract: "Publish the outbox's messages until SIGTERM or SIGINT (graceful: finishes its batches, releases its partitions).",
        discussion: "Run several on one store to share the work; each takes a fair share of the partitions.")

    @OptionGroup var options: StoreOptions

    @Option(help: "Kafka bootstrap servers, host:port[,host:port…] (env: OUTBOX_KAFKA_BROKERS). One destination is required: this or --output.")
    var kafkaBrokers: String?

    @Option(name: .customShort("X"), help: ArgumentHelp("A librdkafka setting, key=value (repeatable), as kcat -X.", valueName: "key=value"))
    var kafkaSettings: [String] = []

    @Option(help: "Instead of Kafka: a JSON-lines file path to publish to, or - for standard output (the relay deletes what it writes there).")
    var output: String?

    @Option(help: "The relay's id in the store (default: host, process id and a random suffix).")
    var relayID: String?

    @Option(help: "Messages per batch.")
    var batchSize: Int = 500

    @Option(help: "Longest wait between claims without a wake-up, in milliseconds.")
    var pollIntervalMs: Int = 2000

    @Option(help: "Partition lease duration in seconds; a crashed relay's work moves after this long.")
    var leaseSeconds: Double = 10

    @Option(help: "Failed attempts before a message is dead-lettered.")
    var maxAttempts: Int = 10

    @Option(help: "Keep delivered messages this many seconds (default: delete at once).")
    var retentionSeconds: Double?

    @Option(help: "At start, how long to wait for a store that cannot be reached yet (restarting, or started after the relay) before giving up; 0: fail at once. A wrong URL, login or missing tables fail at once regardless.")
    var storeWaitSeconds: Double = 60

    func validate() throws {
        guard batchSize > 0 && batchSize <= 100_000 else { throw ValidationError("--batch-size must be between 1 and 100000.") }
        guard pollIntervalMs > 0 else { throw ValidationError("--poll-interval-ms must be positive.") }
        guard leaseSeconds >= 0.5 else { throw ValidationError("--lease-seconds must be at least 0.5.") }
        guard maxAttempts > 0 else { throw ValidationError("--max-attempts must be positive.") }
        if let retentionSeconds, retentionSeconds < 0 { throw ValidationError("--retention-seconds cannot be negative.") }
        guard storeWaitSeconds >= 0 && storeWaitSeconds <= 86_400 else { throw ValidationError("--store-wait-seconds must be between 0 and 86400.") }
        if resolvedKafkaBrokers != nil && output != nil {
            throw ValidationError("Choose one destination: --kafka-brokers or --output, not both.")
        }
        // A relay acknowledges (deletes) what it publishes: with no destination chosen, messages
        // must not quietly go to standard output and vanish from the outbox.
        if resolvedKafkaBrokers == nil && output == nil && kafkaSettings.isEmpty {
            throw ValidationError("Give the relay a destination: --kafka-brokers host:port (or OUTBOX_KAFKA_BROKERS), or --output FILE (- for standard output).")
        }
        if resolvedKafkaBrokers == nil && !kafkaSettings.isEmpty {
            throw ValidationError("-X settings are for Kafka; give --kafka-brokers too.")
        }
        _ = try parsedKafkaSettings()
        if let brokers = resolvedKafkaBrokers, brokers.split(separator: ",").contains(where: { !$0.contains(":") }) {
            throw ValidationError("--kafka-brokers must be host:port[,host:port…], e.g. localhost:9092.")
        }
    }

    private var resolvedKafkaBrokers: String? {
        (kafkaBrokers ?? ProcessInfo.processInfo.environment["OUTBOX_KAFKA_BROKERS"]).flatMap { $0.isEmpty ? nil : $0 }
    }

    private func parsedKafkaSettings() throws -> [String: String] {
        var settings: [String: String] = [:]
        for setting in kafkaSettings {
            guard let equals = setting.firstIndex(of: "="), equals != setting.startIndex else {
                throw ValidationError("-X takes key=value, e.g. -X linger.ms=5.")
            }
            settings[String(setting[..<equals])] = String(setting[setting.index(after: equals)...])
        }
        return settings
    }

    func run() async throws {
        let logger = try options.makeLogger()
        let location = try options.location()
        let opened = try await StoreStartup.open(location, settings: StoreSettings(wakeUps: true),
                                                 waitingUpTo: .milliseconds(Int64(storeWaitSeconds * 1000)), logger: logger)
        let store = opened.store
        let publisher: any OutboxPublisher
        var services: [any Service] = opened.services
        let destination: String
        if let brokers = resolvedKafkaBrokers {
            let kafka = try KafkaPublisher(
                configuration: KafkaPublisherConfiguration(bootstrapServers: brokers, properties: try parsedKafkaSettings()),
                logger: logger)
            publisher = kafka
            services.append(kafka)  // first: it stops after the relay, and flushes
            destination = "kafka \(brokers)"
        } else {
            let output = self.output!  // validate() requires a destination
            let lines = output == "-" ? OutboxJSONLinesPublisher() : try OutboxJSONLinesPublisher(path: output)
            publisher = lines
            destination = lines.destination
        }
        let lease = Duration.milliseconds(Int64(leaseSeconds * 1000))
        var configuration = OutboxRelayConfiguration(
            batchSize: batchSize,
            pollInterval: .milliseconds(pollIntervalMs),
            leaseDuration: lease,
            heartbeatInterval: lease / 4,
            retryPolicy: OutboxRetryPolicy(maximumAttempts: maxAttempts),
            deliveredRetention: retentionSeconds.map { .milliseconds(Int64($0 * 1000)) })
        if let relayID { configuration.relayID = relayID }
        try configuration.validate()
        let relay = OutboxRelay(store: store, publisher: publisher, configuration: configuration, logger: logger)
        logger.info("Relaying", metadata: ["outbox.store": "\(location)", "outbox.destination": "\(destination)"])
        let group = ServiceGroup(services: services + [relay], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        try await group.run()
    }
}
