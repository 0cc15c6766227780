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
