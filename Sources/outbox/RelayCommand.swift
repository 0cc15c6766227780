import ArgumentParser
import Foundation
import Logging
import Outbox
import OutboxPrometheus
import ServiceLifecycle

struct RelayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "relay",
        abstract: "Publish the outbox's messages (to Kafka, NATS JetStream, RabbitMQ or a file) until SIGTERM or SIGINT (graceful: finishes its batches, releases its partitions).",
        discussion: "Run several on one store to share the work; each takes a fair share of the partitions.")

    @OptionGroup var options: StoreOptions

    @OptionGroup var destination: RelayDestinationOptions

    @OptionGroup var tracing: RelayTracingOptions

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

    @Option(help: ArgumentHelp("Serve Prometheus metrics at http://HOST:PORT/metrics (default: no endpoint).", valueName: "host:port"))
    var metricsAddress: String?

    @Option(help: "Seconds between the backlog readings behind the pending, oldest-age and dead-letter gauges (bounded indexed reads).")
    var backlogGaugeSeconds: Double = 10

    func validate() throws {
        guard batchSize > 0 && batchSize <= 100_000 else { throw ValidationError("--batch-size must be between 1 and 100000.") }
        guard pollIntervalMs > 0 else { throw ValidationError("--poll-interval-ms must be positive.") }
        guard leaseSeconds >= 0.5 else { throw ValidationError("--lease-seconds must be at least 0.5.") }
        guard maxAttempts > 0 else { throw ValidationError("--max-attempts must be positive.") }
        if let retentionSeconds, retentionSeconds < 0 { throw ValidationError("--retention-seconds cannot be negative.") }
        guard storeWaitSeconds >= 0 && storeWaitSeconds <= 86_400 else { throw ValidationError("--store-wait-seconds must be between 0 and 86400.") }
        guard backlogGaugeSeconds >= 0.1 && backlogGaugeSeconds <= 3_600 else {
            throw ValidationError("--backlog-gauge-seconds must be between 0.1 and 3600.")
        }
        if let metricsAddress {
            do { _ = try OutboxListenAddress(parsing: metricsAddress) } catch let error as OutboxError { throw ValidationError("--metrics-address: \(error.message)") }
        }
        try tracing.check()
        try destination.check()
    }

    func run() async throws {
        let logger = try options.makeLogger()
        // Bootstrapped before anything creates a metric, so the store and the relay report to it.
        let metrics = try metricsAddress.map { try OutboxMetricsEndpoint.bootstrap(listening: $0, logger: logger) }
        let spans = try tracing.bootstrap(serviceName: "outbox-relay")
        let location = try options.location()
        let opened = try await StoreStartup.open(location, settings: StoreSettings(wakeUps: true),
                                                 waitingUpTo: .milliseconds(Int64(storeWaitSeconds * 1000)), logger: logger)
        let store = opened.store
        let (publisher, publisherServices, destination) = try self.destination.makePublisher(logger: logger)
        // The publisher before the relay: it stops after the relay, and flushes.
        // The metrics endpoint first: it stops last, so the final figures can still be scraped.
        let services: [any Service] = (spans.map { [$0] } ?? []) + (metrics.map { [$0] } ?? []) + opened.services + publisherServices
        let lease = Duration.milliseconds(Int64(leaseSeconds * 1000))
        var configuration = OutboxRelayConfiguration(
            batchSize: batchSize,
            pollInterval: .milliseconds(pollIntervalMs),
            leaseDuration: lease,
            heartbeatInterval: lease / 4,
            retryPolicy: OutboxRetryPolicy(maximumAttempts: maxAttempts),
            deliveredRetention: retentionSeconds.map { .milliseconds(Int64($0 * 1000)) })
        if let relayID { configuration.relayID = relayID }
        configuration.backlogGaugeInterval = .milliseconds(Int64(backlogGaugeSeconds * 1000))
        try configuration.validate()
        let relay = OutboxRelay(store: store, publisher: publisher, configuration: configuration, logger: logger)
        logger.info("Relaying", metadata: ["outbox.store": "\(location)", "outbox.destination": "\(destination)"])
        let group = ServiceGroup(services: services + [relay], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        try await group.run()
    }
}
