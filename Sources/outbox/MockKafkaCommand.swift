import ArgumentParser
import Foundation
import Logging
import OutboxKafka
import ServiceLifecycle

struct MockKafkaCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mock-kafka",
        abstract: "Run librdkafka's mock Kafka cluster until SIGTERM or SIGINT, and print its bootstrap address.",
        discussion: "Relays, consumers and kcat in other processes can share it: kcat -b $(cat bootstrap.txt) -L")

    @Option(help: "Brokers in the cluster.")
    var brokers: Int = 3

    @Option(help: "Topics to create, as name or name:partitions (repeatable); others are created on first use.")
    var topic: [String] = []

    @Option(help: "Partitions of topics given without a count.")
    var partitions: Int = 6

    @Option(help: "Also write the bootstrap address to this file (removed again on exit).")
    var bootstrapFile: String?

    @Flag(help: ArgumentHelp(
        "Read fault-injection commands from standard input, one per line.",
        discussion: "broker-down <id> | leader <topic> <partition> <broker> | coordinator <group> <broker> | produce-errors <count>"))
    var commandsFromStdin = false

    func validate() throws {
        guard (1...32).contains(brokers) else { throw ValidationError("--brokers must be between 1 and 32.") }
        guard (1...1000).contains(partitions) else { throw ValidationError("--partitions must be between 1 and 1000.") }
        for spec in topic {
            let parts = spec.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count <= 2, !parts[0].isEmpty, parts.count == 1 || Int(parts[1]).map({ (1...1000).contains($0) }) == true else {
                throw ValidationError("--topic '\(spec)' must be a name or name:partitions with 1 to 1000 partitions.")
            }
        }
    }

    func run() async throws {
        let cluster = try KafkaMockCluster(brokers: brokers)
        for spec in topic {
            let parts = spec.split(separator: ":")
            try cluster.createTopic(String(parts[0]), partitions: parts.count == 2 ? Int(parts[1])! : partitions,
                                    replicationFactor: min(brokers, 3))
        }
        if let bootstrapFile {
            do {
                try Data((cluster.bootstrapServers + "\n").utf8).write(to: URL(fileURLWithPath: bootstrapFile), options: .atomic)
            } catch {
                throw ValidationError("Cannot write the bootstrap file \(bootstrapFile); check that its folder exists and is writable.")
            }
        }
        // Written directly, not through print's buffer: a parent process reads it through a pipe at once.
        FileHandle.standardOutput.write(Data((cluster.bootstrapServers + "\n").utf8))
        var logger = Logger(label: "outbox.mock-kafka") { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = .warning
        if commandsFromStdin {
            let controller = MockKafkaController(cluster: cluster, logger: logger)
            let thread = Thread { controller.readCommands() }
            thread.name = "outbox.mock-kafka.commands"
            thread.start()
        }
        try await ServiceGroup(services: [UntilShutdown()], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger).run()
        if let bootstrapFile { try? FileManager.default.removeItem(atPath: bootstrapFile) }
        withExtendedLifetime(cluster) {}
    }
}

/// A service that does nothing until graceful shutdown.
private struct UntilShutdown: Service {
    func run() async throws {
        try await gracefulShutdown()
    }
}

/// Applies fault-injection commands read from standard input (used by `outbox chaos`). The mock
/// never brings a broker back up: librdkafka 2.0.2 aborts when the old port was taken meanwhile;
/// partitions of a broker that is down get a leader again with `leader`.
private final class MockKafkaController: @unchecked Sendable {
    // @unchecked: the cluster is used from the one command thread only (and librdkafka's mock
    // API is thread-safe).
    let cluster: KafkaMockCluster
    let logger: Logger

    init(cluster: KafkaMockCluster, logger: Logger) {
        self.cluster = cluster
        self.logger = logger
    }

    func readCommands() {
        while let line = readLine() {
            let words = line.split(separator: " ").map(String.init)
            do {
                switch (words.first, words.count) {
                case ("broker-down", 2):
                    try cluster.takeBrokerDown(Int32(words[1]) ?? -1)
                case ("leader", 4):
                    try cluster.setLeader(topic: words[1], partition: Int32(words[2]) ?? -1, broker: Int32(words[3]) ?? -1)
                case ("coordinator", 3):
                    try cluster.setGroupCoordinator(group: words[1], broker: Int32(words[2]) ?? -1)
                case ("produce-errors", 2):
                    let count = max(0, min(100, Int(words[1]) ?? 0))
                    cluster.failNextProduceRequests(with: (0..<count).map { $0 % 2 == 0 ? .notLeaderForPartition : .requestTimedOut })
                default:
                    logger.warning("Unknown mock-kafka command", metadata: ["command": "\(line)"])
                }
            } catch {
                logger.warning("Mock-kafka command failed", metadata: ["command": "\(line)", "error": "\(error)"])
            }
        }
    }
}
