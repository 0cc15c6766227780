import Foundation
import Logging
import Outbox
import OutboxKafka
import ServiceLifecycle

/// Where the demo's relays publish, and how the demo reads it back as a consumer would.
struct DemoDestination: CustomStringConvertible {
    static let topic = "orders"

    /// What a consumer saw: the message id, key and payload, per key in broker order, and headers.
    struct Delivered {
        var id: UUID
        var key: String?
        var payload: [UInt8]
        var headers: [OutboxHeader]
    }

    let publisher: any OutboxPublisher
    let services: [any Service]
    let kafkaBootstrap: String?
    private let cluster: KafkaMockCluster?
    private let publishedPath: String
    let description: String

    init(sink: DemoCommand.Sink, workspace: DemoWorkspace, logger: Logger) throws {
        publishedPath = workspace.publishedPath
        switch sink {
        case .jsonl:
            publisher = try OutboxJSONLinesPublisher(path: workspace.publishedPath)
            services = []
            cluster = nil
            kafkaBootstrap = nil
            description = workspace.publishedPath
        case .kafka:
            let cluster = try KafkaMockCluster(brokers: 3)
            try cluster.createTopic(Self.topic, partitions: 6, replicationFactor: 3)
            let kafka = try KafkaPublisher(
                configuration: KafkaPublisherConfiguration(bootstrapServers: cluster.bootstrapServers,
                                                           properties: KafkaPublisherConfiguration.mockClusterProperties),
                logger: logger)
            self.cluster = cluster
            publisher = kafka
            services = [kafka]
            kafkaBootstrap = cluster.bootstrapServers
            description = "kafka topic \(Self.topic) (3 brokers, 6 partitions)"
        }
    }

    /// Everything published, in an order that is per-key broker order.
    func readBack(count: Int) async throws -> [Delivered] {
        if let cluster {
            let received = try await KafkaTopicReader(bootstrapServers: cluster.bootstrapServers)
                .read(topic: Self.topic, count: count, timeout: .seconds(60))
            return received.sorted { ($0.partition, $0.offset) < ($1.partition, $1.offset) }.compactMap { message in
                message.outboxID.map {
                    Delivered(id: $0, key: message.key.map { String(decoding: $0, as: UTF8.self) }, payload: message.value, headers: message.headers)
                }
            }
        }
        let lines = try OutboxJSONLine.read(contentsOf: publishedPath)
        // Lines of one relay are in publish order; across relays, order by publish time.
        return lines.enumerated().sorted { ($0.element.publishedAt, $0.offset) < ($1.element.publishedAt, $1.offset) }.map {
            Delivered(id: $0.element.id, key: $0.element.key, payload: $0.element.payload, headers: $0.element.headers)
        }
    }
}
