import Foundation
import Logging
import Outbox
import OutboxKafka
import OutboxTesting
import ServiceLifecycle

/// A mock cluster and a running publisher for one test.
final class KafkaTestEnvironment: Sendable {
    let cluster: KafkaMockCluster
    let publisher: KafkaPublisher
    let topic: String
    private let group: ServiceGroup
    private let task: Task<Void, any Error>

    init(brokers: Int = 3, partitions: Int = 6, properties: [String: String] = [:]) async throws {
        cluster = try KafkaMockCluster(brokers: brokers)
        topic = "orders-\(UUID().uuidString.prefix(8).lowercased())"
        try cluster.createTopic(topic, partitions: partitions, replicationFactor: min(brokers, 3))
        var settings = KafkaPublisherConfiguration.mockClusterProperties
        settings.merge(properties) { $1 }
        publisher = try KafkaPublisher(
            configuration: KafkaPublisherConfiguration(bootstrapServers: cluster.bootstrapServers, properties: settings),
            logger: OutboxStoreConformance.defaultLogger)
        let group = ServiceGroup(services: [publisher], logger: OutboxStoreConformance.defaultLogger)
        self.group = group
        task = Task { try await group.run() }
    }

    func stop() async throws {
        await group.triggerGracefulShutdown()
        try await task.value
    }

    func records(_ count: Int, keys: Int = 10, payloadSize: Int = 100) -> [OutboxRecord] {
        (0..<count).map { index in
            let message = OutboxMessage(topic: topic, key: keys > 0 ? "key-\(index % keys)" : nil, type: "OrderPlaced",
                                        payload: Array(repeating: UInt8(index % 251), count: payloadSize),
                                        headers: [OutboxHeader("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")])
            return OutboxRecord(message: message, sequence: Int64(index + 1), partition: 0)
        }
    }

    func readBack(_ count: Int, timeout: Duration = .seconds(30)) async throws -> [KafkaReceivedMessage] {
        try await KafkaTopicReader(bootstrapServers: cluster.bootstrapServers).read(topic: topic, count: count, timeout: timeout)
    }
}

/// The Java client's default partitioner for keyed records (`Utils.murmur2`), written from its
/// published algorithm, to check that ours lands keys on the same partitions.
func javaMurmur2Partition(_ key: [UInt8], partitions: Int32) -> Int32 {
    let seed: UInt32 = 0x9747_b28c
    let m: UInt32 = 0x5bd1_e995
    let length = key.count
    var h = seed ^ UInt32(length)
    for i in 0..<(length / 4) {
        let i4 = i * 4
        var k = UInt32(key[i4]) | UInt32(key[i4 + 1]) << 8 | UInt32(key[i4 + 2]) << 16 | UInt32(key[i4 + 3]) << 24
        k = k &* m
        k ^= k >> 24
        k = k &* m
        h = h &* m
        h ^= k
    }
    let tail = length & ~3
    switch length % 4 {
    case 3:
        h ^= UInt32(key[tail + 2]) << 16
        h ^= UInt32(key[tail + 1]) << 8
        h ^= UInt32(key[tail])
        h = h &* m
    case 2:
        h ^= UInt32(key[tail + 1]) << 8
        h ^= UInt32(key[tail])
        h = h &* m
    case 1:
        h ^= UInt32(key[tail])
        h = h &* m
    default:
        break
    }
    h ^= h >> 13
    h = h &* m
    h ^= h >> 15
    return Int32(bitPattern: h & 0x7fff_ffff) % partitions
}
