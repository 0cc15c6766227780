import CRdKafka
public import Foundation
public import Outbox

/// One message read back from Kafka.
public struct KafkaReceivedMessage: Sendable, Hashable {
    /// The Kafka partition it landed on.
    public var partition: Int32
    /// Its offset in the partition.
    public var offset: Int64
    /// The Kafka key, or `nil` for a keyless message.
    public var key: [UInt8]?
    /// The value.
    public var value: [UInt8]
    /// All headers, in order.
    public var headers: [OutboxHeader]

    /// The `outbox-id` header as a UUID.
    public var outboxID: UUID? { headers.first { $0.name == "outbox-id" }.flatMap { UUID(uuidString: $0.value) } }
}

/// Reads a topic from the beginning of every partition, without a consumer group: the demo and the
/// tests use it to check, from the consumer's side, what the relay published.
public final class KafkaTopicReader: Sendable {
    private let bootstrapServers: String
    private let properties: [String: String]

    /// Creates a reader; `properties` are librdkafka consumer settings.
    public init(bootstrapServers: String, properties: [String: String] = [:]) {
        self.bootstrapServers = bootstrapServers
        self.properties = properties
    }

    /// Reads `topic` until `count` distinct messages arrived (by `outbox-id`; a message without one
    /// counts on its own) or `timeout` passed, on a dedicated thread. Duplicates are returned too,
    /// but do not count towards `count`. Within a partition the messages are in offset order.
    ///
    /// - Throws: ``KafkaError`` when the topic cannot be read.
    public func read(topic: String, count: Int, timeout: Duration) async throws -> [KafkaReceivedMessage] {
        let bootstrapServers = self.bootstrapServers
        var settings = ["bootstrap.servers": bootstrapServers, "group.id": "outbox-reader-\(UUID().uuidString)",
                        "enable.auto.commit": "false", "enable.partition.eof": "false", "log_level": "3"]
        settings.merge(properties) { $1 }
        let consumer = try KafkaHandle(kind: .consumer, properties: settings)
        let result: Result<[KafkaReceivedMessage], KafkaError> = await onDedicatedThread(name: "outbox-kafka-reader") {
            Self.read(consumer, topic: topic, count: count, timeout: timeout)
        }
        return try result.get()
    }

    private static func read(_ consumer: KafkaHandle, topic: String, count: Int, timeout: Duration) -> Result<[KafkaReceivedMessage], KafkaError> {
        let deadline = ContinuousClock.now + timeout
        // Learn the partitions, then read each from its beginning.
        var partitionCount: Int32 = 0
        while partitionCount == 0 {
            guard ContinuousClock.now < deadline else {
                return .failure(KafkaError(code: -1, operation: "read", message: "The topic \(topic) has no partitions yet.", isRetriable: true))
            }
            let topicHandle = rd_kafka_topic_new(consumer.pointer, topic, nil)
            var metadata: UnsafePointer<rd_kafka_metadata>?
            if rd_kafka_metadata(consumer.pointer, 0, topicHandle, &metadata, 2000) == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata,
               metadata.pointee.topic_cnt > 0, metadata.pointee.topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR {
                partitionCount = metadata.pointee.topics[0].partition_cnt
            }
            if let metadata { rd_kafka_metadata_destroy(metadata) }
            rd_kafka_topic_destroy(topicHandle)
            if partitionCount == 0 { Thread.sleep(forTimeInterval: 0.1) }
        }
        let assignment = rd_kafka_topic_partition_list_new(partitionCount)
        for partition in 0..<partitionCount {
            rd_kafka_topic_partition_list_add(assignment, topic, partition).pointee.offset = Int64(RD_KAFKA_OFFSET_BEGINNING)
        }
        rd_kafka_assign(consumer.pointer, assignment)
        rd_kafka_topic_partition_list_destroy(assignment)
        rd_kafka_poll_set_consumer(consumer.pointer)

        var received: [KafkaReceivedMessage] = []
        var distinct: Set<UUID> = []
        var withoutID = 0
        while distinct.count + withoutID < count && ContinuousClock.now < deadline {
            guard let message = rd_kafka_consumer_poll(consumer.pointer, 100) else { continue }
            defer { rd_kafka_message_destroy(message) }
            guard message.pointee.err == RD_KAFKA_RESP_ERR_NO_ERROR else { continue }
            let decoded = Self.decode(message)
            if let id = decoded.outboxID { distinct.insert(id) } else { withoutID += 1 }
            received.append(decoded)
        }
        rd_kafka_consumer_close(consumer.pointer)
        return .success(received)
    }

    private static func decode(_ message: UnsafeMutablePointer<rd_kafka_message_t>) -> KafkaReceivedMessage {
        let value = message.pointee.payload.map { [UInt8](UnsafeRawBufferPointer(start: $0, count: message.pointee.len)) } ?? []
        let key = message.pointee.key.map { [UInt8](UnsafeRawBufferPointer(start: $0, count: message.pointee.key_len)) }
        var headers: [OutboxHeader] = []
        var list: OpaquePointer?
        if rd_kafka_message_headers(message, &list) == RD_KAFKA_RESP_ERR_NO_ERROR, let list {
            var index = 0
            var name: UnsafePointer<CChar>?
            var valuePointer: UnsafeRawPointer?
            var size = 0
            while rd_kafka_header_get_all(list, index, &name, &valuePointer, &size) == RD_KAFKA_RESP_ERR_NO_ERROR {
                let bytes = valuePointer.map { [UInt8](UnsafeRawBufferPointer(start: $0, count: size)) } ?? []
                headers.append(OutboxHeader(name.map { String(cString: $0) } ?? "", String(decoding: bytes, as: UTF8.self)))
                index += 1
            }
        }
        return KafkaReceivedMessage(partition: message.pointee.partition, offset: message.pointee.offset,
                                    key: key, value: value, headers: headers)
    }
}
