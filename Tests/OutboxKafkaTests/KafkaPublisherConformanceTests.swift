import Foundation
import Logging
import Outbox
import OutboxKafka
import OutboxTesting
import ServiceLifecycle
import Synchronization
import Testing

@Suite("Kafka publisher conformance")
struct KafkaPublisherConformanceTests {
    @Test(arguments: OutboxPublisherConformance.Check.allCases)
    func conformance(_ check: OutboxPublisherConformance.Check) async throws {
        try await OutboxPublisherConformance(harness: KafkaMockHarness()).run(check)
    }
}

/// librdkafka's mock cluster: 3 brokers, a 6-partition topic replicated 3 times.
struct KafkaMockHarness: OutboxPublisherHarness {
    var name: String { "Kafka" }

    func makeEnvironment() async throws -> any OutboxPublisherUnderTest {
        try await KafkaUnderTest()
    }
}

final class KafkaUnderTest: OutboxPublisherUnderTest {
    static let maximumMessageBytes = 100_000
    static let deliveryTimeout = Duration.milliseconds(1500)  // message.timeout.ms below
    let cluster: KafkaMockCluster
    let kafka: KafkaPublisher
    let topic: String
    private let group: ServiceGroup
    private let running: Task<Void, any Error>
    private let closed = Mutex(false)

    init() async throws {
        cluster = try KafkaMockCluster(brokers: 3)
        topic = "orders-\(UUID().uuidString.prefix(8).lowercased())"
        try cluster.createTopic(topic, partitions: 6, replicationFactor: 3)
        var properties = KafkaPublisherConfiguration.mockClusterProperties
        properties["message.max.bytes"] = "\(Self.maximumMessageBytes)"
        // Scaled down, so an outage many delivery timeouts long takes seconds.
        properties["message.timeout.ms"] = "1500"
        kafka = try KafkaPublisher(
            configuration: KafkaPublisherConfiguration(bootstrapServers: cluster.bootstrapServers, properties: properties,
                                                       shutdownFlushTimeout: .seconds(2)),
            logger: OutboxStoreConformance.defaultLogger)
        let group = ServiceGroup(services: [kafka], logger: OutboxStoreConformance.defaultLogger)
        self.group = group
        running = Task { try await group.run() }
        // An empty publish returns once the publisher is running (its startup check passed).
        _ = try await kafka.publish([])
    }

    var publisher: any OutboxPublisher { kafka }
    var deliveryTimeout: Duration { Self.deliveryTimeout }

    func makePoisonMessage(key: String?) -> OutboxMessage {
        OutboxMessage(topic: topic, key: key, type: "Poison", payload: Array(repeating: 0x50, count: Self.maximumMessageBytes * 2))
    }

    func inject(_ fault: OutboxBrokerFault) async throws {
        if fault.isPartitionLeaderDown {
            // As a Kafka cluster elects new leaders. The broker is never brought back: librdkafka
            // 2.0.2's mock aborts the process if its old port was taken meanwhile (see KafkaMockCluster).
            try cluster.takeBrokerDown(1)
            for partition in 0..<6 { try cluster.setLeader(topic: topic, partition: Int32(partition), broker: 2) }
        } else if let count = fault.retriableErrorCount {
            cluster.failNextProduceRequests(with: Array(repeating: .notEnoughReplicas, count: count))
        } else if fault.isFatalProducerError {
            // A real broker refuses every request of a producer whose sequence numbers went out
            // of step, up to the new producer the fatal error brings. The mock checks no sequence
            // numbers: refusing one request only, it would append the old producer's next request
            // of that partition, a later message of a key before the earlier one the relay retries.
            let cluster = cluster
            kafka.setBetweenProducers { cluster.clearProduceErrors() }
            cluster.failNextProduceRequests(with: Array(repeating: .outOfOrderSequenceNumber, count: 1_000))
        } else if fault.isOutage {
            for broker in cluster.brokerIDs { try cluster.takeBrokerDown(broker) }
        } else if fault.isRecovery {
            // Safe here: one cluster per check, brought back within seconds (see KafkaMockCluster).
            for broker in cluster.brokerIDs { try cluster.bringBrokerUp(broker) }
        }
    }

    func consume(count: Int, timeout: Duration) async throws -> [OutboxConsumedMessage] {
        let received = try await KafkaTopicReader(bootstrapServers: cluster.bootstrapServers).read(topic: topic, count: count, timeout: timeout)
        return received.sorted { ($0.partition, $0.offset) < ($1.partition, $1.offset) }.compactMap { message in
            message.outboxID.map { OutboxConsumedMessage(id: $0, key: message.key.map { String(decoding: $0, as: UTF8.self) }, payload: message.value) }
        }
    }

    func close() async throws {
        guard closed.withLock({ closed in defer { closed = true }; return !closed }) else { return }
        await group.triggerGracefulShutdown()
        try await running.value
    }
}
