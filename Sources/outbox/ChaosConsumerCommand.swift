import ArgumentParser
import Foundation
import Logging
import Outbox
import OutboxKafka
import ServiceLifecycle

/// The consumer application of `outbox chaos`: an inbox consumer in a Kafka consumer group that
/// handles each message of the topic by inserting one row into the business table of the store
/// under test, in the transaction that records the message in the inbox.
///
/// The row's note is `handled <outbox-id> <nanoseconds since 1970> <consumer name>`: the time
/// orders one key's handlings across processes (the next message of a key is handled only after
/// the one before committed), which the MongoDB collection, without an insertion order, needs.
/// Messages whose id ends in `00` are the consumer's poison: their handler always throws, so they
/// must end as inbox dead letters while their keys go on.
struct ChaosConsumerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chaos-consumer",
        abstract: "The consumer application of `outbox chaos` (handles the topic into the store until SIGTERM).",
        shouldDisplay: false)

    /// The consumer group every chaos consumer joins.
    static let group = "chaos-consumers"
    /// What the handler of a poison message throws.
    static let poisonReason = "chaos poison: this handler always fails"

    /// Whether the consumer's handler fails for the message with this id, always (about 1 in 256).
    static func isPoison(_ id: UUID) -> Bool { id.uuidString.hasSuffix("00") }

    @OptionGroup var options: StoreOptions

    @Option(name: .customLong("kafka-brokers"), help: "The Kafka bootstrap servers.")
    var kafkaBrokers: String

    @Option(help: "The topic to consume.")
    var topic: String = "chaos"

    @Option(help: "This consumer's name, written into every row it handles.")
    var name: String

    @Option(help: "How long to wait for a store that cannot be reached yet (a database restarting), in seconds.")
    var storeWaitSeconds: Double = 60

    func validate() throws {
        guard !name.isEmpty, !name.contains(" ") else { throw ValidationError("--name must be a word without spaces.") }
        guard !kafkaBrokers.isEmpty else { throw ValidationError("--kafka-brokers must name at least one host:port.") }
    }

    func run() async throws {
        let logger = try options.makeLogger(label: "outbox.chaos-consumer")
        let opened = try await StoreStartup.open(try options.location(), settings: StoreSettings(),
                                                 waitingUpTo: .milliseconds(Int64(storeWaitSeconds * 1000)), logger: logger)
        let source = try KafkaInboxSource(
            bootstrapServers: kafkaBrokers, group: Self.group, topics: [topic],
            // A SIGKILLed member holds its partitions until its session times out: keep that short.
            properties: ["session.timeout.ms": "6000", "heartbeat.interval.ms": "500", "reconnect.backoff.max.ms": "500", "log_level": "3"])
        let configuration = OutboxInboxConfiguration(
            group: Self.group,
            retryPolicy: OutboxRetryPolicy(maximumAttempts: 3, maximumPermanentFailureAttempts: 3,
                                           initialBackoff: .milliseconds(50), maximumBackoff: .milliseconds(500)),
            commitInterval: .milliseconds(200),
            shutdownGracePeriod: .seconds(5),
            storeCallTimeout: .seconds(10))
        let name = self.name
        // The store's own services (PostgreSQL's client) run first: creating the consumer
        // migrates the inbox through them.
        try await opened.withServices { opened in
            let consumer = try await opened.makeInboxConsumer(source, configuration) { message in
                guard let id = message.outboxID else { return "handled \(message.identity) 0 \(name)" }
                if Self.isPoison(id) { throw ChaosFailure(Self.poisonReason) }
                let nanoseconds = Int64(Date().timeIntervalSince1970 * 1_000_000_000)
                return "handled \(id.uuidString) \(nanoseconds) \(name)"
            }
            try await ServiceGroup(services: [consumer], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger).run()
        }
    }
}
