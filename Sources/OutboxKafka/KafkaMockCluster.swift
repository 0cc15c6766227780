import CRdKafka

/// librdkafka's mock Kafka cluster: real brokers speaking the Kafka protocol on local ports, with
/// fault injection. The test broker of this project (no Kafka server can be installed here), and
/// what `outbox mock-kafka` and the demo run.
///
/// What the mock does not do: drop duplicate retries of a plain idempotent producer, write abort
/// markers, fence zombie producers, or check an idempotent producer's sequence numbers: after it
/// failed one produce request, it appends the same producer's next request of that partition,
/// which a real broker refuses (`OUT_OF_ORDER_SEQUENCE_NUMBER`) because a sequence is missing.
/// The outbox's own guarantees are measured at the consumer by message id.
///
/// Retention: a mock partition keeps at most 5 MB (or 100,000 produce batches) and deletes its
/// oldest messages beyond that, so a consumer that starts late reads only the newest part of a
/// large topic. Spread a large backlog that must be read whole over enough partitions.
public final class KafkaMockCluster: @unchecked Sendable {
    // @unchecked: the mock cluster's functions are thread-safe (they post to its own thread);
    // this object is the only owner of both pointers.
    private let handle: KafkaHandle
    private let cluster: OpaquePointer

    /// The bootstrap list clients connect to, e.g. `127.0.0.1:40001,127.0.0.1:40002`.
    public let bootstrapServers: String
    /// Broker ids, 1-based.
    public let brokerIDs: [Int32]

    /// Starts `brokers` mock brokers on random local ports.
    ///
    /// - Throws: ``KafkaError`` when librdkafka cannot start the cluster.
    public init(brokers: Int = 3) throws {
        guard (1...32).contains(brokers) else {
            throw KafkaError(code: -1, operation: "start mock cluster", message: "A mock cluster has 1 to 32 brokers.", isRetriable: false)
        }
        // The mock cluster lives inside a client handle; a producer that never produces will do.
        handle = try KafkaHandle(kind: .producer, properties: ["log_level": "3"])
        guard let cluster = rd_kafka_mock_cluster_new(handle.pointer, Int32(brokers)) else {
            throw KafkaError(code: -1, operation: "start mock cluster", message: "librdkafka could not start the mock cluster.", isRetriable: false)
        }
        self.cluster = cluster
        bootstrapServers = String(cString: rd_kafka_mock_cluster_bootstraps(cluster))
        brokerIDs = (1...Int32(brokers)).map { $0 }
    }

    deinit {
        rd_kafka_mock_cluster_destroy(cluster)
    }

    /// Creates a topic (topics are otherwise auto-created on first use).
    public func createTopic(_ name: String, partitions: Int, replicationFactor: Int = 1) throws {
        let error = rd_kafka_mock_topic_create(cluster, name, Int32(partitions), Int32(replicationFactor))
        try check(error, "create topic \(name)")
    }

    /// Takes a broker down: its connections close and it accepts none.
    public func takeBrokerDown(_ broker: Int32) throws {
        try check(rd_kafka_mock_broker_set_down(cluster, broker), "take broker \(broker) down")
    }

    /// Brings a broker back up on its old port.
    ///
    /// Caution: librdkafka 2.0.2 aborts the whole process (an `assert` in `rd_kafka_mock_broker_cmd`)
    /// when that port was taken by another socket while the broker was down — likely when many mock
    /// clusters run in parallel. Prefer moving leadership with ``setLeader(topic:partition:broker:)``.
    public func bringBrokerUp(_ broker: Int32) throws {
        try check(rd_kafka_mock_broker_set_up(cluster, broker), "bring broker \(broker) up")
    }

    /// Moves a partition's leadership to another broker.
    public func setLeader(topic: String, partition: Int32, broker: Int32) throws {
        try check(rd_kafka_mock_partition_set_leader(cluster, topic, partition, broker), "move leader of \(topic)/\(partition)")
    }

    /// Makes `broker` the coordinator of consumer group `group` (the group's state is the
    /// cluster's, so its members just find the new coordinator).
    public func setGroupCoordinator(group: String, broker: Int32) throws {
        try check(rd_kafka_mock_coordinator_set(cluster, "group", group, broker), "move the coordinator of group \(group)")
    }

    /// Makes the next `errors.count` produce requests (to any broker) fail with these errors, in order.
    public func failNextProduceRequests(with errors: [KafkaErrorCode]) {
        let codes = errors.map { rd_kafka_resp_err_t(rawValue: $0.rawValue) }
        codes.withUnsafeBufferPointer { buffer in
            rd_kafka_mock_push_request_errors_array(cluster, 0 /* ProduceRequest */, buffer.count, buffer.baseAddress)
        }
    }

    /// Forgets the produce errors ``failNextProduceRequests(with:)`` queued and no request used.
    public func clearProduceErrors() {
        rd_kafka_mock_clear_request_errors(cluster, 0 /* ProduceRequest */)
    }

    /// Makes every request about `topic` fail with `error` (or succeed again with `nil`).
    public func setTopicError(_ topic: String, _ error: KafkaErrorCode?) {
        rd_kafka_mock_topic_set_error(cluster, topic, rd_kafka_resp_err_t(rawValue: error?.rawValue ?? 0))
    }

    /// Adds `delay` to every answer of a broker (a slow network).
    public func setRoundTripTime(broker: Int32, _ delay: Duration) throws {
        try check(rd_kafka_mock_broker_set_rtt(cluster, broker, delay.milliseconds), "set round-trip time of broker \(broker)")
    }

    private func check(_ error: rd_kafka_resp_err_t, _ operation: String) throws {
        guard error == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError(code: error.rawValue, operation: operation,
                             message: "The mock cluster could not \(operation): \(KafkaError.name(of: error)).", isRetriable: false)
        }
    }
}
