import Foundation
import Logging
import Outbox
import OutboxKafka
import ServiceLifecycle
import Synchronization

/// The consume scenario: the inbox consumer on the bench's store against a raw consumer of the
/// same topic, and commit → handled latency through the whole path at the steady rate.
extension BenchCommand {
    struct ConsumeResult {
        /// Messages per second a consumer that only reads reaches.
        var raw: Double
        /// Messages per second a consumer reaches that writes the same business row per message in
        /// the inbox's batches and as many transactions at once, with no inbox record and no key
        /// order: what the inbox's writes cost without its guarantees.
        var plain: Double
        /// Messages per second the inbox consumer handles (the inbox record and one business row
        /// per message, batches of up to 100 messages per transaction).
        var inbox: Double
        /// Application commit → handled by the inbox consumer, milliseconds, sorted.
        var latencies: [Double]
    }

    /// Store transactions at once, for the inbox consumer and the plain one.
    static let consumeTransactions = 16
    /// The inbox's defaults, which the plain consumer copies: rows per transaction, read-ahead.
    static let inboxDefaults = OutboxInboxConfiguration(group: "bench")

    func measureConsume(_ target: BenchStore, _ broker: BenchPublisher, payload: [UInt8], logger: Logger) async throws -> ConsumeResult? {
        guard let bootstrap = broker.kafkaBootstrap else {
            print("  consume                             skipped: it reads Kafka (--publisher kafka)")
            return nil
        }
        let suffix = UUID().uuidString.prefix(8).lowercased()
        let topic = "bench-consume-\(suffix)"
        try broker.kafkaCluster?.createTopic(topic, partitions: Self.consumePartitions(messages: messages, payloadBytes: payload.count),
                                             replicationFactor: 3)
        // Publish the backlog both consumers read.
        for start in stride(from: 0, to: messages, by: batchSize) {
            let batch = (start..<min(start + batchSize, messages)).map {
                OutboxRecord(message: OutboxMessage(topic: topic, key: "key-\($0 % keys)", type: "Bench", payload: payload), sequence: Int64($0), partition: 0)
            }
            let delivered = try await broker.publisher.publish(batch).filter(\.isDelivered).count
            guard delivered == batch.count else {
                throw OutboxError(code: .publisherUnavailable, operation: "bench", message: "Only \(delivered) of \(batch.count) messages reached Kafka.")
            }
        }
        let properties = ["session.timeout.ms": "6000", "heartbeat.interval.ms": "500"]

        // Raw: read everything, nothing else.
        let raw = try KafkaInboxSource(bootstrapServers: bootstrap, group: "bench-raw-\(suffix)", topics: [topic], properties: properties)
        var read = 0
        var rawStarted: ContinuousClock.Instant?
        var rawProgress = Self.ConsumeProgress(what: "The raw consumer", total: messages)
        while read < messages {
            let poll = try await raw.poll(timeout: .milliseconds(200))
            if !poll.messages.isEmpty && rawStarted == nil { rawStarted = .now }
            read += poll.messages.count
            try rawProgress.check(read)
        }
        let rawRate = Double(read) / max(0.001, (ContinuousClock.now - (rawStarted ?? .now)).timeInterval)
        await raw.close()

        let plainRate = try await measurePlainConsumer(target, bootstrap: bootstrap, topic: topic, group: "bench-plain-\(suffix)",
                                                       properties: properties)

        // Inbox: the same topic, from its first message, handled once each in the store.
        let handled = Atomic<Int>(0)
        let firstHandled = Mutex<ContinuousClock.Instant?>(nil)
        let inbox = try await target.target.opened.makeInboxConsumer(
            try KafkaInboxSource(bootstrapServers: bootstrap, group: "bench-inbox-\(suffix)", topics: [topic], properties: properties),
            OutboxInboxConfiguration(group: "bench-inbox-\(suffix)", maximumConcurrentHandlers: Self.consumeTransactions, commitInterval: .milliseconds(200)),
            { message in
                firstHandled.withLock { if $0 == nil { $0 = .now } }
                handled.add(1, ordering: .relaxed)
                return message.identity
            })
        let group = ServiceGroup(services: [inbox], logger: logger)
        let running = Task { try await group.run() }
        var inboxProgress = Self.ConsumeProgress(what: "The inbox consumer", total: messages)
        while handled.load(ordering: .relaxed) < messages {
            try await Task.sleep(for: .milliseconds(10))
            do {
                try inboxProgress.check(handled.load(ordering: .relaxed))
            } catch {
                await group.triggerGracefulShutdown()
                _ = try? await running.value
                throw error
            }
        }
        let inboxElapsed = ContinuousClock.now - (firstHandled.withLock { $0 } ?? .now)
        await group.triggerGracefulShutdown()
        try await running.value
        let inboxRate = Double(handled.load(ordering: .relaxed)) / max(0.001, inboxElapsed.timeInterval)

        return ConsumeResult(raw: rawRate, plain: plainRate, inbox: inboxRate,
                             latencies: try await measureCommitToHandled(target, broker, bootstrap: bootstrap, payload: payload, logger: logger))
    }

    /// Reads the topic in a group of its own and writes one business row per message,
    /// the inbox's batch of rows a transaction, up to ``consumeTransactions`` at once, in whatever
    /// order: the baseline that tells the inbox's own cost from the cost of the writes.
    private func measurePlainConsumer(_ target: BenchStore, bootstrap: String, topic: String, group: String,
                                      properties: [String: String]) async throws -> Double {
        let source = try KafkaInboxSource(bootstrapServers: bootstrap, group: group, topics: [topic], properties: properties)
        let write = target.target.opened.write
        let (total, transactions) = (messages, Self.consumeTransactions)
        let (batch, readAhead) = (Self.inboxDefaults.maximumBatchSize, Self.inboxDefaults.maximumBufferedMessages)
        var started: ContinuousClock.Instant?
        var written = 0
        do {
            try await withThrowingTaskGroup(of: Int.self) { tasks in
                var waiting: [String] = []
                var read = 0
                var running = 0
                var progress = Self.ConsumeProgress(what: "The plain consumer", total: total)
                while written < total {
                    if read < total && waiting.count < readAhead {
                        let poll = try await source.poll(timeout: .milliseconds(running == 0 ? 200 : 1))
                        if !poll.messages.isEmpty && started == nil { started = .now }
                        read += poll.messages.count
                        waiting += poll.messages.map(\.identity)
                    }
                    while running < transactions && (waiting.count >= batch || (read >= total && !waiting.isEmpty)) {
                        let rows = Array(waiting.prefix(batch))
                        waiting.removeFirst(rows.count)
                        running += 1
                        tasks.addTask {
                            try await write([], rows)
                            return rows.count
                        }
                    }
                    if running == transactions || (running > 0 && read >= total && waiting.isEmpty), let done = try await tasks.next() {
                        written += done
                        running -= 1
                    }
                    try progress.check(read + written)
                }
            }
        } catch {
            await source.close()
            throw error
        }
        await source.close()
        return Double(written) / max(0.001, (ContinuousClock.now - (started ?? .now)).timeInterval)
    }

    /// Partitions for the consume topic: the mock broker keeps at most 5 MB per partition and
    /// deletes the oldest messages beyond it, so a large backlog is spread until each partition
    /// holds under 4 MB (estimating 200 bytes of key, headers and framing per message); at least 6.
    static func consumePartitions(messages: Int, payloadBytes: Int) -> Int {
        let bytes = Double(messages) * Double(payloadBytes + 200)
        return max(6, Int((bytes / 4_000_000).rounded(.up)))
    }

    /// Ends a consume measurement that stopped moving, with what it reached, instead of waiting
    /// out a long deadline.
    struct ConsumeProgress {
        var what: String
        var total: Int
        var last = 0
        var lastMoved = ContinuousClock.now
        static let patience = Duration.seconds(30)

        mutating func check(_ count: Int) throws {
            let now = ContinuousClock.now
            if count != last {
                last = count
                lastMoved = now
            } else if now - lastMoved > Self.patience {
                throw OutboxError(code: .publisherUnavailable, operation: "bench",
                                  message: "\(what) stopped at \(count) of \(total) messages: nothing new for \(Self.patience.components.seconds) s.")
            }
        }
    }

    /// Offers `rate` single-message application transactions per second for `seconds`; a relay
    /// publishes them to Kafka and an inbox consumer on the same store handles them.
    private func measureCommitToHandled(_ target: BenchStore, _ broker: BenchPublisher, bootstrap: String, payload: [UInt8],
                                        logger: Logger) async throws -> [Double] {
        let suffix = UUID().uuidString.prefix(8).lowercased()
        let topic = "bench-latency-\(suffix)"
        try broker.kafkaCluster?.createTopic(topic, partitions: 6, replicationFactor: 3)
        let committedAt = Mutex<[String: ContinuousClock.Instant]>([:])
        let latencies = Mutex<[Double]>([])
        let warmUp = OutboxMessage(topic: topic, key: "warm-up", type: "Bench", payload: payload)
        let warmUpID = warmUp.id.uuidString.lowercased()
        let warmedUp = Atomic<Bool>(false)
        let consumer = try await target.target.opened.makeInboxConsumer(
            try KafkaInboxSource(bootstrapServers: bootstrap, group: "bench-latency-\(suffix)", topics: [topic],
                                 properties: ["session.timeout.ms": "6000", "heartbeat.interval.ms": "500", "fetch.wait.max.ms": "5"]),
            OutboxInboxConfiguration(group: "bench-latency-\(suffix)", commitInterval: .milliseconds(200), pollTimeout: .milliseconds(50)),
            { message in
                let now = ContinuousClock.now
                if message.identity == warmUpID { warmedUp.store(true, ordering: .releasing) }
                if let committed = committedAt.withLock({ $0[message.identity] }) {
                    latencies.withLock { $0.append(max(0, (now - committed).timeInterval * 1000)) }
                }
                return message.identity
            })
        let relay = OutboxRelay(store: target.store, publisher: broker.publisher,
                                configuration: OutboxRelayConfiguration(relayID: "bench-latency", batchSize: batchSize, maximumBatchesInFlight: batchesInFlight), logger: logger)
        let group = ServiceGroup(services: target.services + [relay, consumer], logger: logger)
        let running = Task { try await group.run() }
        // Measured once everything has settled: leases, the listener, and the consumer group
        // (joining takes seconds: the group waits for more members). A first message through the
        // whole path says when.
        try await target.enqueue([warmUp])
        let warming = ContinuousClock.now
        while !warmedUp.load(ordering: .acquiring) && ContinuousClock.now - warming < .seconds(60) {
            try await Task.sleep(for: .milliseconds(20))
        }
        let total = rate * seconds
        let started = ContinuousClock.now
        for index in 0..<total {
            let due = started + .nanoseconds(Int64(index) * 1_000_000_000 / Int64(rate))
            if due > .now { try await Task.sleep(until: due, clock: .continuous) }
            let message = OutboxMessage(topic: topic, key: "key-\(index % keys)", type: "Bench", payload: payload)
            // Recorded before the commit returns, as the handler may run first.
            let id = message.id.uuidString.lowercased()
            committedAt.withLock { $0[id] = .now }
            try await target.enqueue([message])
        }
        while latencies.withLock({ $0.count }) < total && ContinuousClock.now - started < .seconds(seconds + 60) {
            try await Task.sleep(for: .milliseconds(10))
        }
        await group.triggerGracefulShutdown()
        try await running.value
        return latencies.withLock { $0 }.sorted()
    }
}
