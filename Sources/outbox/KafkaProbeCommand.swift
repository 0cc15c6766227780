import ArgumentParser
import Foundation
import Logging
import Outbox
import OutboxKafka
import ServiceLifecycle

/// Checks the broker side of a chaos run on its own: the Kafka publisher sends keyed messages to
/// librdkafka's mock cluster while the chaos run's Kafka faults hit it (injected produce errors,
/// partition leaders moving, a broker going down and up), with no store and no relay. Every
/// message the publisher reports delivered must be in the topic at the end.
///
/// It exists because long chaos runs now and then reported one or two committed messages lost
/// that the store had marked delivered; this command showed the same on the broker side alone (see
/// docs/ARCHITECTURE.md, "Chaos run").
struct KafkaProbeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kafka-probe",
        abstract: "Publish to the mock Kafka cluster under the chaos faults, with no store, and check every acknowledged message arrived.",
        shouldDisplay: false)

    @Option(help: "How long to publish, in seconds.")
    var seconds: Int = 300

    @Option(help: "Messages per batch; a batch goes out every 200 ms.")
    var batch: Int = 500

    func validate() throws {
        guard (5...3600).contains(seconds) else { throw ValidationError("--seconds must be between 5 and 3600.") }
        guard (1...10_000).contains(batch) else { throw ValidationError("--batch must be between 1 and 10000.") }
    }

    func run() async throws {
        let logger = Logger(label: "outbox.kafka-probe") { _ in SwiftLogNoOpLogHandler() }
        let cluster = try KafkaMockCluster(brokers: 3)
        let topic = "probe"
        try cluster.createTopic(topic, partitions: 6, replicationFactor: 3)
        var properties = KafkaPublisherConfiguration.mockClusterProperties
        properties["max.in.flight.requests.per.connection"] = "1"  // as the chaos run's relays
        properties["reconnect.backoff.max.ms"] = "500"
        properties["log_level"] = "0"
        let publisher = try KafkaPublisher(
            configuration: KafkaPublisherConfiguration(bootstrapServers: cluster.bootstrapServers, properties: properties), logger: logger)
        let group = ServiceGroup(services: [publisher], logger: logger)
        let running = Task { try await group.run() }
        let follower = try KafkaTopicFollower(bootstrapServers: cluster.bootstrapServers, topic: topic, properties: ["log_level": "0"])
        let faults = Task { await Self.breakThings(cluster, topic: topic) }

        var pending: [OutboxRecord] = []
        var delivered: [UUID: String] = [:]
        var sequence: Int64 = 0
        let end = ContinuousClock.now + .seconds(seconds)
        while ContinuousClock.now < end {
            while pending.count < batch {
                sequence += 1
                let key = "key-\(Int.random(in: 0..<40))"
                pending.append(OutboxRecord(message: OutboxMessage(topic: topic, key: key, type: "Probe", text: "probe \(sequence)"),
                                            sequence: sequence, partition: 0))
            }
            let records = pending
            pending = []
            // Anything not delivered goes out again in the next batch, as the relay would send it.
            for (record, outcome) in zip(records, try await publisher.publish(records)) {
                if outcome.isDelivered { delivered[record.message.id] = record.message.key } else { pending.append(record) }
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        faults.cancel()
        await faults.value
        for partition in 0..<6 { try? cluster.setLeader(topic: topic, partition: Int32(partition), broker: 2) }
        let reading = try await follower.finish(count: delivered.count, timeout: .seconds(90))
        let seen = Set(reading.messages.compactMap(\.outboxID))
        let missing = delivered.keys.filter { !seen.contains($0) }
        print("kafka-probe: acknowledged=\(delivered.count) in_topic=\(seen.count) missing=\(missing.count) trimmed=\(reading.trimmedOffsets)")
        for id in missing.sorted(by: { $0.uuidString < $1.uuidString }) { print("  missing \(id.uuidString) key=\(delivered[id] ?? "-")") }
        await group.triggerGracefulShutdown()
        _ = try? await running.value
        if !missing.isEmpty || reading.trimmedOffsets > 0 { throw ExitCode.failure }
    }

    /// The chaos run's Kafka faults, with the broker also coming back up.
    private static func breakThings(_ cluster: KafkaMockCluster, topic: String) async {
        var brokerDown = false
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(Int64.random(in: 1200...3000)))
            switch Int.random(in: 0..<4) {
            case 0:
                cluster.failNextProduceRequests(with: (0..<6).map { $0 % 2 == 0 ? .notLeaderForPartition : .requestTimedOut })
            case 1:
                for partition in 0..<6 {
                    try? cluster.setLeader(topic: topic, partition: Int32(partition), broker: Int32.random(in: (brokerDown ? 2 : 1)...3))
                }
            case 2 where brokerDown:
                try? cluster.bringBrokerUp(1)
                brokerDown = false
            default:
                guard !brokerDown else { continue }
                brokerDown = true
                try? cluster.takeBrokerDown(1)
                try? await Task.sleep(for: .milliseconds(Int64.random(in: 500...2000)))
                for partition in 0..<6 { try? cluster.setLeader(topic: topic, partition: Int32(partition), broker: Int32.random(in: 2...3)) }
            }
        }
    }
}
