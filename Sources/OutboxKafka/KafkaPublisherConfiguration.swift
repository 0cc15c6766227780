/// How a ``KafkaPublisher`` talks to Kafka. Every value has a default except the brokers.
public struct KafkaPublisherConfiguration: Sendable {
    /// The bootstrap list, `host:port[,host:port…]`.
    public var bootstrapServers: String
    /// librdkafka properties, applied over the defaults (as `kcat -X key=value` does). See
    /// librdkafka's CONFIGURATION.md for the names.
    public var properties: [String: String]
    /// On start, wait this long for a broker to answer and fail with a clear error if none does;
    /// `nil` starts at once and lets messages wait up to the delivery timeout. Default 10 s.
    public var brokerWaitAtStartup: Duration?
    /// How long graceful shutdown waits for the broker to acknowledge what is in flight. Default 10 s.
    public var shutdownFlushTimeout: Duration

    /// The defaults under `properties`: an idempotent producer that waits for all in-sync replicas,
    /// keyed partitioning that matches the Java client (murmur2), so a key lands on the same
    /// partition whichever client wrote it, and no linger: the relay hands the producer whole
    /// batches at once, so waiting for more messages would only delay each batch (librdkafka
    /// still packs messages that queue up while a request is in flight).
    public static let defaultProperties: [String: String] = [
        "enable.idempotence": "true",
        "acks": "all",
        "partitioner": "murmur2_random",
        "linger.ms": "0",
        "message.timeout.ms": "30000",
        "queue.buffering.max.messages": "100000",
    ]

    /// Settings that suit librdkafka's mock cluster: one request in flight per connection (its
    /// sockets lack TCP_NODELAY, which otherwise stalls each request ~40 ms) and quick reconnects.
    public static let mockClusterProperties: [String: String] = [
        "max.in.flight.requests.per.connection": "1",
        "reconnect.backoff.max.ms": "500",
    ]

    /// Creates a configuration.
    public init(
        bootstrapServers: String,
        properties: [String: String] = [:],
        brokerWaitAtStartup: Duration? = .seconds(10),
        shutdownFlushTimeout: Duration = .seconds(10)
    ) {
        self.bootstrapServers = bootstrapServers
        self.properties = properties
        self.brokerWaitAtStartup = brokerWaitAtStartup
        self.shutdownFlushTimeout = shutdownFlushTimeout
    }

    /// The defaults, then `properties`, then the bootstrap list.
    var effectiveProperties: [String: String] {
        var merged = Self.defaultProperties
        merged.merge(properties) { $1 }
        merged["bootstrap.servers"] = bootstrapServers
        return merged
    }
}
