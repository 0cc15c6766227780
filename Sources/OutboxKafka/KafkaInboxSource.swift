import CRdKafka
import Foundation
public import Outbox
import Synchronization

/// A Kafka consumer in a consumer group, as an ``OutboxInboxSource`` for ``OutboxInboxConsumer``.
///
/// librdkafka's consumer runs on a thread of its own. Offsets are never committed automatically:
/// only the positions the inbox consumer hands to ``commit(_:)``, synchronously. On a rebalance
/// librdkafka calls back on that thread with the partitions taken away; the callback drops what
/// was buffered for them, lets ``poll(timeout:)`` answer the revocation, and waits (up to the
/// grace period) until the inbox consumer has finished their work, committed and called
/// ``releaseRevoked(_:)``; only then does the group move them. So a partition's next owner starts
/// where this one stopped.
///
/// Read-ahead is bounded: while `maximumBufferedMessages` wait for the inbox consumer, the thread
/// stops taking messages from librdkafka, whose own queue is bounded by its settings
/// (`queued.min.messages`, `queued.max.messages.kbytes`). So a large backlog never sits in memory
/// whole. The thread still polls librdkafka once a second meanwhile, which keeps rebalances and
/// `max.poll.interval.ms` served even when the consumer is stuck (its store down).
public final class KafkaInboxSource: OutboxInboxSource, Sendable {
    private struct State {
        var buffered: [OutboxInboxMessage] = []
        var revoked: Set<OutboxInboxPartition> = []
        var released: Set<OutboxInboxPartition> = []
        var failure: KafkaError?
        var closing = false
        /// The consumer thread waits for room in the buffer.
        var waitingForRoom = false
    }

    private let handle: KafkaHandle
    private let bridge: KafkaRebalanceBridge
    private let state = Mutex(State())
    private let arrived = OutboxSignal()
    private let releasedSignal = OutboxSignal()
    private let finished = Atomic<Bool>(false)
    private let gracePeriod: Duration
    private let maximumBufferedMessages: Int
    /// Signalled when `poll` takes messages while the consumer thread waits for room.
    private let room = DispatchSemaphore(value: 0)

    /// Messages read and not yet taken by ``poll(timeout:)``.
    package var bufferedCount: Int { state.withLock { $0.buffered.count } }

    /// Joins `group` and subscribes to `topics`.
    ///
    /// - Parameters:
    ///   - properties: more librdkafka consumer settings (TLS, SASL, session timeout); the ones
    ///     the inbox relies on (`enable.auto.commit=false`, `enable.auto.offset.store=false`) win.
    ///   - gracePeriod: how long a revocation waits for the inbox consumer before giving the
    ///     partitions up anyway (what was not committed is then read again and skipped by the inbox).
    ///   - maximumBufferedMessages: messages read ahead of the consumer before the source stops
    ///     reading. Default 10,000.
    /// - Throws: ``KafkaError`` when the consumer cannot be created or subscribe.
    public init(bootstrapServers: String, group: String, topics: [String], properties: [String: String] = [:],
                gracePeriod: Duration = .seconds(30), maximumBufferedMessages: Int = 10_000) throws {
        var settings = ["bootstrap.servers": bootstrapServers, "group.id": group, "auto.offset.reset": "earliest",
                        "enable.partition.eof": "false", "log_level": "3", "partition.assignment.strategy": "range"]
        settings.merge(properties) { $1 }
        settings["enable.auto.commit"] = "false"
        settings["enable.auto.offset.store"] = "false"
        let bridge = KafkaRebalanceBridge()
        self.bridge = bridge
        self.gracePeriod = gracePeriod
        self.maximumBufferedMessages = max(1, maximumBufferedMessages)
        handle = try KafkaHandle(kind: .consumer, properties: settings, callbackOwner: bridge) { raw in
            rd_kafka_conf_set_opaque(raw, Unmanaged.passUnretained(bridge).toOpaque())
            rd_kafka_conf_set_rebalance_cb(raw) { consumer, error, partitions, opaque in
                guard let consumer, let opaque else { return }
                Unmanaged<KafkaRebalanceBridge>.fromOpaque(opaque).takeUnretainedValue().rebalance(consumer, error, partitions)
            }
        }
        rd_kafka_poll_set_consumer(handle.pointer)
        let list = rd_kafka_topic_partition_list_new(Int32(topics.count))
        for topic in topics { rd_kafka_topic_partition_list_add(list, topic, RD_KAFKA_PARTITION_UA) }
        let subscribed = rd_kafka_subscribe(handle.pointer, list)
        rd_kafka_topic_partition_list_destroy(list)
        guard subscribed == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError(code: subscribed.rawValue, operation: "subscribe",
                             message: "Subscribing to \(topics.joined(separator: ", ")) failed: \(String(cString: rd_kafka_err2str(subscribed))).",
                             isRetriable: false)
        }
        bridge.onRevoke = { [weak self] partitions in self?.revoke(partitions) ?? true }
        let thread = Thread { [self] in
            self.consume()
            finished.store(true, ordering: .releasing)
        }
        thread.name = "outbox-kafka-inbox"
        thread.start()
    }

    /// `kafka` in traces.
    public var messagingSystem: String { "kafka" }

    public func poll(timeout: Duration) async throws -> OutboxInboxPoll {
        let deadline = ContinuousClock.now + timeout
        while true {
            let generation = arrived.generation
            let answer = try state.withLock { state -> OutboxInboxPoll? in
                if let failure = state.failure { throw failure }
                if !state.revoked.isEmpty {
                    defer { state.revoked = [] }
                    return OutboxInboxPoll(revoked: state.revoked)
                }
                guard !state.buffered.isEmpty else { return nil }
                defer {
                    state.buffered = []
                    if state.waitingForRoom {
                        state.waitingForRoom = false
                        room.signal()
                    }
                }
                return OutboxInboxPoll(messages: state.buffered)
            }
            if let answer { return answer }
            let now = ContinuousClock.now
            if now >= deadline { return OutboxInboxPoll() }
            await arrived.wait(since: generation, timeout: deadline - now)
        }
    }

    public func commit(_ positions: [OutboxInboxPartition: Int64]) async throws {
        guard !positions.isEmpty else { return }
        let handle = self.handle
        try await Task.detached {
            let list = rd_kafka_topic_partition_list_new(Int32(positions.count))
            defer { rd_kafka_topic_partition_list_destroy(list) }
            for (partition, offset) in positions {
                rd_kafka_topic_partition_list_add(list, partition.topic, partition.partition).pointee.offset = offset
            }
            let result = rd_kafka_commit(handle.pointer, list, 0)
            guard result == RD_KAFKA_RESP_ERR_NO_ERROR else {
                throw KafkaError(code: result.rawValue, operation: "commit",
                                 message: "Committing offsets failed: \(String(cString: rd_kafka_err2str(result))).", isRetriable: true)
            }
        }.value
    }

    public func releaseRevoked(_ partitions: Set<OutboxInboxPartition>) async {
        state.withLock { $0.released.formUnion(partitions) }
        releasedSignal.signal()
    }

    public func close() async {
        state.withLock { $0.closing = true }
        releasedSignal.signal()
        room.signal()
        while !finished.load(ordering: .acquiring) {
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    // MARK: - The consumer thread

    private func consume() {
        var lastPoll = ContinuousClock.now
        while !state.withLock({ $0.closing }) {
            let full = state.withLock { state -> Bool in
                state.waitingForRoom = state.buffered.count >= maximumBufferedMessages
                return state.waitingForRoom
            }
            if full && ContinuousClock.now - lastPoll < .seconds(1) {
                _ = room.wait(timeout: .now() + .milliseconds(100))
                continue
            }
            lastPoll = .now
            guard let message = rd_kafka_consumer_poll(handle.pointer, 100) else { continue }
            defer { rd_kafka_message_destroy(message) }
            if message.pointee.err != RD_KAFKA_RESP_ERR_NO_ERROR {
                let error = message.pointee.err
                // Fatal or authorization errors end the consumer; the rest librdkafka retries.
                if error == RD_KAFKA_RESP_ERR__FATAL || error == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED
                    || error == RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED {
                    state.withLock { $0.failure = KafkaError(code: error.rawValue, operation: "consume",
                                                             message: "The Kafka consumer failed: \(String(cString: rd_kafka_err2str(error))).",
                                                             isRetriable: false) }
                    arrived.signal()
                }
                continue
            }
            let decoded = KafkaTopicFollower.decode(message)
            let topic = message.pointee.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? ""
            let inbox = OutboxInboxMessage(
                partition: OutboxInboxPartition(topic: topic, partition: decoded.partition), offset: decoded.offset,
                key: decoded.key.map { String(decoding: $0, as: UTF8.self) }, payload: decoded.value, headers: decoded.headers)
            state.withLock { $0.buffered.append(inbox) }
            arrived.signal()
        }
        // Leaving the group revokes what is assigned; the inbox consumer has committed already.
        rd_kafka_consumer_close(handle.pointer)
    }

    /// On the consumer thread, inside librdkafka's poll: hands the revocation to `poll` and waits
    /// until the inbox consumer released the partitions (or the grace period ends).
    private func revoke(_ partitions: Set<OutboxInboxPartition>) -> Bool {
        let closing = state.withLock { state -> Bool in
            state.buffered.removeAll { partitions.contains($0.partition) }
            if !state.closing { state.revoked.formUnion(partitions) }
            return state.closing
        }
        if closing { return true }
        arrived.signal()
        let deadline = ContinuousClock.now + gracePeriod
        while ContinuousClock.now < deadline {
            let done = state.withLock { state -> Bool in
                guard state.closing || partitions.isSubset(of: state.released) else { return false }
                state.released.subtract(partitions)
                return true
            }
            if done { return true }
            Thread.sleep(forTimeInterval: 0.005)
        }
        return false
    }
}

/// librdkafka's rebalance callback, reached through the handle's opaque.
final class KafkaRebalanceBridge: @unchecked Sendable {
    // @unchecked: `onRevoke` is set once, before the consumer thread polls, and read only there.
    var onRevoke: (Set<OutboxInboxPartition>) -> Bool = { _ in true }

    func rebalance(_ consumer: OpaquePointer, _ error: rd_kafka_resp_err_t, _ partitions: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?) {
        if error == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS {
            rd_kafka_assign(consumer, partitions)
        } else {
            var revoked: Set<OutboxInboxPartition> = []
            if let partitions {
                for index in 0..<Int(partitions.pointee.cnt) {
                    let element = partitions.pointee.elems[index]
                    revoked.insert(OutboxInboxPartition(topic: String(cString: element.topic), partition: element.partition))
                }
            }
            _ = onRevoke(revoked)
            rd_kafka_assign(consumer, nil)
        }
    }
}
