import CRdKafka
public import Foundation
public import Outbox
import Synchronization

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

/// What a reader read, and what it could not.
public struct KafkaTopicReading: Sendable {
    /// Every message read, duplicates included; within a partition in offset order.
    public var messages: [KafkaReceivedMessage]
    /// Offsets the broker had dropped before they were read (the mock cluster keeps about 5 MB
    /// per partition): those messages were published but cannot be audited. Zero when the reader
    /// kept up.
    public var trimmedOffsets: Int64
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
        try await readReporting(topic: topic, count: count, timeout: timeout).messages
    }

    /// Like ``read(topic:count:timeout:)``, and says how many offsets the broker had dropped
    /// before they were read.
    public func readReporting(topic: String, count: Int, timeout: Duration) async throws -> KafkaTopicReading {
        let follower = try KafkaTopicFollower(bootstrapServers: bootstrapServers, topic: topic, properties: properties)
        return try await follower.finish(count: count, timeout: timeout)
    }
}

/// Reads a topic from the beginning of every partition while it is being written, on a thread of
/// its own, so that nothing the broker later drops (a bounded log, retention) goes unread: start it
/// before the run, ``finish(count:timeout:)`` after. Offsets the broker dropped before they were
/// read are counted, never silently skipped.
public final class KafkaTopicFollower: Sendable {
    private struct State {
        var messages: [KafkaReceivedMessage] = []
        var distinct: Set<UUID> = []
        var withoutID = 0
        var nextOffset: [Int32: Int64] = [:]
        var trimmed: Int64 = 0
        var failure: KafkaError?
    }

    private let state = Mutex(State())
    private let stopping = Atomic<Bool>(false)
    private let stopped = OutboxSignal()
    private let finished = Atomic<Bool>(false)

    /// Starts reading `topic` at once.
    ///
    /// - Throws: ``KafkaError`` when the consumer cannot be created.
    public init(bootstrapServers: String, topic: String, properties: [String: String] = [:]) throws {
        var settings = ["bootstrap.servers": bootstrapServers, "group.id": "outbox-reader-\(UUID().uuidString)",
                        "enable.auto.commit": "false", "enable.partition.eof": "false", "auto.offset.reset": "earliest", "log_level": "3"]
        settings.merge(properties) { $1 }
        let consumer = try KafkaHandle(kind: .consumer, properties: settings)
        let thread = Thread { [self] in
            self.follow(consumer, topic: topic)
            finished.store(true, ordering: .releasing)
            stopped.signal()
        }
        thread.name = "outbox-kafka-follower"
        thread.start()
    }

    /// Distinct messages read so far.
    public var distinctCount: Int { state.withLock { $0.distinct.count + $0.withoutID } }

    /// Reads on until `count` distinct messages arrived or `timeout` passed, then stops.
    ///
    /// - Throws: ``KafkaError`` when the topic could not be read.
    public func finish(count: Int, timeout: Duration) async throws -> KafkaTopicReading {
        let deadline = ContinuousClock.now + timeout
        while distinctCount < count && ContinuousClock.now < deadline && !finished.load(ordering: .acquiring) {
            try await Task.sleep(for: .milliseconds(20))
        }
        stopping.store(true, ordering: .releasing)
        while !finished.load(ordering: .acquiring) {
            let generation = stopped.generation
            if finished.load(ordering: .acquiring) { break }
            await stopped.wait(since: generation, timeout: .milliseconds(100))
        }
        return try state.withLock { state in
            if let failure = state.failure { throw failure }
            return KafkaTopicReading(messages: state.messages, trimmedOffsets: state.trimmed)
        }
    }

    private func follow(_ consumer: KafkaHandle, topic: String) {
        // Learn the partitions, then read each from its beginning.
        var partitionCount: Int32 = 0
        let deadline = ContinuousClock.now + .seconds(30)
        while partitionCount == 0 {
            guard ContinuousClock.now < deadline, !stopping.load(ordering: .acquiring) else {
                state.withLock { $0.failure = KafkaError(code: -1, operation: "read", message: "The topic \(topic) has no partitions yet.", isRetriable: true) }
                return
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
        while !stopping.load(ordering: .acquiring) {
            guard let message = rd_kafka_consumer_poll(consumer.pointer, 100) else { continue }
            defer { rd_kafka_message_destroy(message) }
            guard message.pointee.err == RD_KAFKA_RESP_ERR_NO_ERROR else { continue }
            let decoded = Self.decode(message)
            state.withLock { state in
                // Offsets of a partition are contiguous here (no transactions): a jump means the
                // broker dropped what lay between before this reader got to it.
                let expected = state.nextOffset[decoded.partition, default: 0]
                if decoded.offset > expected { state.trimmed += decoded.offset - expected }
                state.nextOffset[decoded.partition] = max(expected, decoded.offset + 1)
                if let id = decoded.outboxID { state.distinct.insert(id) } else { state.withoutID += 1 }
                state.messages.append(decoded)
            }
        }
        rd_kafka_consumer_close(consumer.pointer)
    }

    static func decode(_ message: UnsafeMutablePointer<rd_kafka_message_t>) -> KafkaReceivedMessage {
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
