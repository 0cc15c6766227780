import ArgumentParser
import Foundation
import Logging
import Outbox
import OutboxAMQP
import OutboxKafka
import OutboxNATS
import ServiceLifecycle

/// The broker `outbox bench` publishes to, running for the whole bench: Kafka (a given cluster or
/// an in-process mock), NATS JetStream (a given server, with a stream of the bench's own) or
/// RabbitMQ (a given broker, with an exchange and a queue of the bench's own); what the bench
/// creates on a broker is deleted afterwards.
struct BenchPublisher {
    let publisher: any OutboxPublisher
    /// How the report names the broker.
    let description: String
    /// With Kafka: the bootstrap servers, for the consume scenario's consumers.
    var kafkaBootstrap: String?
    /// With the in-process mock: the cluster, to create the consume scenario's topics.
    var kafkaCluster: KafkaMockCluster?
    private let group: ServiceGroup
    private let running: Task<Void, any Error>
    private let cleanup: @Sendable () -> Void

    static func start(_ kind: BrokerKind, kafkaBrokers: String?, natsURL: String?, amqpURL: String?, logger: Logger) async throws -> BenchPublisher {
        switch kind {
        case .kafka:
            var properties = KafkaPublisherConfiguration.defaultProperties
            let bootstrap: String
            var cluster: KafkaMockCluster?
            if let kafkaBrokers {
                bootstrap = kafkaBrokers
            } else {
                let mock = try KafkaMockCluster(brokers: 3)
                try mock.createTopic("bench", partitions: 6, replicationFactor: 3)
                cluster = mock
                bootstrap = mock.bootstrapServers
                properties = KafkaPublisherConfiguration.mockClusterProperties
            }
            let kafka = try KafkaPublisher(configuration: KafkaPublisherConfiguration(bootstrapServers: bootstrap, properties: properties), logger: logger)
            let mock = cluster
            var started = try await start(kafka, description: "Kafka \(kafkaBrokers ?? "in-process mock (3 brokers, 6 partitions)")", logger: logger) {
                withExtendedLifetime(mock) {}
            }
            started.kafkaBootstrap = bootstrap
            started.kafkaCluster = cluster
            return started
        case .nats:
            guard let natsURL else {
                throw ValidationError("--publisher nats needs --nats-url nats://host:port (or OUTBOX_NATS_URL): a NATS server with JetStream.")
            }
            // A stream of the bench's own, on a subject prefix of its own, so nothing of an
            // application's is touched.
            let suffix = UUID().uuidString.prefix(8).lowercased()
            let prefix = "outbox-bench-\(suffix)."
            let stream = "OUTBOX_BENCH_\(suffix)"
            let streams = try NATSStreams(servers: natsURL)
            try streams.createStream(stream, subjects: ["\(prefix)>"])
            let configuration = NATSPublisherConfiguration(servers: natsURL, subjectPrefix: prefix)
            let nats = try NATSPublisher(configuration: configuration, logger: logger)
            return try await start(nats, description: "NATS JetStream \(configuration.redactedServers) (file storage, stream \(stream))", logger: logger) {
                try? streams.deleteStream(stream)
            }
        case .amqp:
            guard let amqpURL else {
                throw ValidationError("--publisher amqp needs --amqp-url amqp://user:password@host:port (or OUTBOX_AMQP_URL): a RabbitMQ broker.")
            }
            let suffix = UUID().uuidString.prefix(8).lowercased()
            let prefix = "outbox-bench-\(suffix)-"
            let (exchange, queue) = (prefix + "bench", prefix + "queue")
            let admin = try AMQPAdmin(url: amqpURL)
            try admin.declareExchange(exchange, type: "topic")
            try admin.declareQueue(queue, boundTo: exchange, bindingKey: "#")
            let configuration = AMQPPublisherConfiguration(url: amqpURL, exchangePrefix: prefix)
            let amqp = try AMQPPublisher(configuration: configuration, logger: logger)
            return try await start(amqp, description: "RabbitMQ \(configuration.redactedURL) (persistent messages, durable queue \(queue))", logger: logger) {
                try? admin.delete(exchange: exchange, queue: queue)
            }
        }
    }

    private static func start(_ publisher: any OutboxPublisher & Service, description: String, logger: Logger,
                              cleanup: @escaping @Sendable () -> Void) async throws -> BenchPublisher {
        let group = ServiceGroup(services: [publisher], logger: logger)
        let running = Task { try await group.run() }
        // An empty publish returns once the publisher is running (connected).
        _ = try await publisher.publish([])
        return BenchPublisher(publisher: publisher, description: description, group: group, running: running, cleanup: cleanup)
    }

    /// Stops the publisher (flushing) and removes what the bench created on the broker.
    func stop() async throws {
        await group.triggerGracefulShutdown()
        try await running.value
        cleanup()
    }
}
