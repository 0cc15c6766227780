import Foundation
import GRDB
import InMemoryTracing
import Outbox
import OutboxKafka
import OutboxSQLite
import OutboxTesting
import ServiceContextModule
import ServiceLifecycle
import Synchronization
import Testing
import Tracing

/// The inbox consumer on real Kafka consumer groups (librdkafka against its mock cluster) with
/// the SQLite inbox: two consumers in one group, joining and leaving mid-stream, handle every
/// message once and in per-key order, redeliveries included.
@Suite("Kafka inbox", .serialized)
struct KafkaInboxTests {
    @Test func twoConsumersInAGroupHandleEveryMessageOnceThroughRebalances() async throws {
        let kafka = try await KafkaTestEnvironment(brokers: 1, partitions: 4)
        var expected: [String: [String]] = [:]
        var records: [OutboxRecord] = []
        for index in 0..<40 {
            for key in 0..<10 {
                let message = OutboxMessage(topic: kafka.topic, key: "k\(key)", type: "OrderPlaced", text: "k\(key)#\(index)")
                records.append(OutboxRecord(message: message, sequence: Int64(records.count + 1), partition: 0))
                expected["k\(key)", default: []].append("k\(key)#\(index)")
            }
        }
        // Published in two halves: the second only once the second consumer has joined, or the
        // first (batching 100 messages a transaction) could handle everything before it did.
        let firstHalf = try await kafka.publisher.publish(Array(records.prefix(200)))
        try #require(firstHalf.allSatisfy { $0.isDelivered })

        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("outbox-kafka-inbox-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = try SQLiteOutboxStore(path: folder.appendingPathComponent("projection.sqlite").path)
        try await store.migrateInbox()
        try await store.writer.write { db in
            try db.execute(sql: "CREATE TABLE projection (seq INTEGER PRIMARY KEY AUTOINCREMENT, row TEXT NOT NULL, consumer TEXT NOT NULL)")
        }
        @Sendable func rows() async throws -> [String] {
            try await store.writer.read { db in try String.fetchAll(db, sql: "SELECT row FROM projection ORDER BY seq") }
        }
        func consumer(_ name: String, watch: RevocationWatch? = nil) throws -> ServiceGroup {
            let handler: SQLiteOutboxStore.Handler = { message, db in
                try db.execute(sql: "INSERT INTO projection (row, consumer) VALUES (?, ?)", arguments: [String(decoding: message.payload, as: UTF8.self), name])
            }
            let kafkaSource = try KafkaInboxSource(bootstrapServers: kafka.cluster.bootstrapServers, group: "projection", topics: [kafka.topic],
                                                   properties: ["session.timeout.ms": "6000", "heartbeat.interval.ms": "500"])
            let source: any OutboxInboxSource = watch.map { $0.watching(kafkaSource) } ?? kafkaSource
            let consumer = OutboxInboxConsumer(store: store, source: source,
                                               configuration: OutboxInboxConfiguration(group: "projection", commitInterval: .milliseconds(100)),
                                               logger: OutboxStoreConformance.defaultLogger, handler: handler)
            return ServiceGroup(services: [consumer], logger: OutboxStoreConformance.defaultLogger)
        }
        let watch = RevocationWatch()
        let first = try consumer("first", watch: watch)
        let firstRun = Task { try await first.run() }
        try await waitUntil("the first consumer handles some", timeout: .seconds(60)) { try await rows().count >= 80 }
        let second = try consumer("second")
        let secondRun = Task { try await second.run() }
        // The second joining makes the group revoke the first consumer's partitions (eager assignment).
        try await waitUntil("the group rebalanced for the second consumer", timeout: .seconds(60)) { watch.sawRevocation }
        // The first 100 again: what a relay that crashed before its acknowledgement publishes again.
        let secondHalf = try await kafka.publisher.publish(Array(records.suffix(200))) + kafka.publisher.publish(Array(records.prefix(100)))
        try #require(secondHalf.allSatisfy { $0.isDelivered })
        try await waitUntil("the group handles some more after the second joined", timeout: .seconds(60)) { try await rows().count >= 300 }
        await first.triggerGracefulShutdown()
        try await firstRun.value
        try await waitUntil("the second consumer handles the rest", timeout: .seconds(60)) { try await rows().count >= 400 }
        await second.triggerGracefulShutdown()
        try await secondRun.value
        try await kafka.stop()

        let handled = try await rows()
        #expect(handled.count == 400, "every message once, the redelivered ones included: \(handled.count)")
        #expect(Dictionary(grouping: handled) { String($0.split(separator: "#")[0]) } == expected, "per-key order")
        let byConsumer = try await store.writer.read { db in
            try Dictionary(uniqueKeysWithValues: Row.fetchAll(db, sql: "SELECT consumer, count(*) AS n FROM projection GROUP BY consumer").map {
                ($0["consumer"] as String, $0["n"] as Int)
            })
        }
        #expect((byConsumer["first"] ?? 0) > 0 && (byConsumer["second"] ?? 0) > 0, "both consumers had partitions: \(byConsumer)")
    }

    /// The source reads ahead only so far. It used to buffer everything librdkafka delivered, so a
    /// consumer behind a large backlog held all of it in memory (and the inbox's bookkeeping grew
    /// with it). Read slowly, every message still arrives once, in offset order.
    @Test func readAheadIsBoundedAndSkipsNothing() async throws {
        let kafka = try await KafkaTestEnvironment(brokers: 1, partitions: 2)
        let published = try await kafka.publisher.publish(kafka.records(5_000))
        try #require(published.allSatisfy { $0.isDelivered })
        let source = try KafkaInboxSource(bootstrapServers: kafka.cluster.bootstrapServers, group: "bounded", topics: [kafka.topic],
                                          properties: ["session.timeout.ms": "6000", "heartbeat.interval.ms": "500"],
                                          maximumBufferedMessages: 200)
        var offsets: [Int32: [Int64]] = [:]
        var mostBuffered = 0
        let deadline = ContinuousClock.now + .seconds(90)
        while offsets.values.reduce(0, { $0 + $1.count }) < 5_000 && ContinuousClock.now < deadline {
            // Time for the source to read ahead as far as it will.
            try await Task.sleep(for: .milliseconds(20))
            mostBuffered = max(mostBuffered, source.bufferedCount)
            for message in try await source.poll(timeout: .milliseconds(50)).messages {
                offsets[message.partition.partition, default: []].append(message.offset)
            }
        }
        await source.close()
        try await kafka.stop()
        #expect(mostBuffered > 0 && mostBuffered <= 210, "read ahead: \(mostBuffered) messages with a limit of 200")
        #expect(offsets.values.reduce(0) { $0 + $1.count } == 5_000)
        for (partition, read) in offsets {
            #expect(read == Array(0..<Int64(read.count)), "partition \(partition): every offset once, in order")
        }
    }
}

/// One trace from the request that enqueued a message to the handler that consumed it, through
/// the relay's publish and a real Kafka consumer group (the mock cluster).
@Suite("Kafka inbox traces", .serialized)
struct KafkaInboxTraceTests {
    @Test func theHandlerIsAGrandchildOfTheEnqueueThroughThePublish() async throws {
        let tracer = InMemoryTracer()
        let kafka = try await KafkaTestEnvironment(brokers: 1, partitions: 2)
        let request = tracer.startSpan("POST /orders", context: .topLevel)
        let message = OutboxMessage(topic: kafka.topic, key: "c-1", type: "OrderPlaced", text: "{}").capturingTraceContext(request.context, instrument: tracer)
        request.end()
        let store = InMemoryOutboxStore()
        try await store.enqueueCommitted([message])
        var relayConfiguration = OutboxRelayConfiguration.forTesting()
        relayConfiguration.tracer = tracer
        let relay = RunningRelay(OutboxRelay(store: store, publisher: kafka.publisher, configuration: relayConfiguration,
                                             logger: OutboxStoreConformance.defaultLogger))

        let inbox = InMemoryInboxStore()
        let source = try KafkaInboxSource(bootstrapServers: kafka.cluster.bootstrapServers, group: "traced", topics: [kafka.topic])
        let consumer = OutboxInboxConsumer(
            store: inbox, source: source,
            configuration: OutboxInboxConfiguration(group: "traced", tracer: tracer), logger: OutboxStoreConformance.defaultLogger
        ) { _, transaction in
            // The handler's own work, traced as an application would: a child of the processing span.
            let span = tracer.startSpan("project order", context: ServiceContext.current ?? .topLevel)
            transaction.insert("projected")
            span.end()
        }
        let group = ServiceGroup(services: [consumer], logger: OutboxStoreConformance.defaultLogger)
        let consuming = Task { try await group.run() }
        try await waitUntil("the message is handled", timeout: .seconds(60)) { inbox.rows == ["projected"] }
        await group.triggerGracefulShutdown()
        try await consuming.value
        try await relay.stop()
        try await kafka.stop()

        let spans = tracer.finishedSpans
        let requestSpan = try #require(spans.first { $0.operationName == "POST /orders" })
        let send = try #require(spans.first { $0.operationName == "send \(kafka.topic)" })
        let process = try #require(spans.first { $0.operationName == "process \(kafka.topic)" })
        let handler = try #require(spans.first { $0.operationName == "project order" })
        #expect(send.parentSpanID == requestSpan.spanID)
        #expect(process.parentSpanID == send.spanID, "the consumer continues the publish span the message carried")
        #expect(handler.parentSpanID == process.spanID, "the handler runs in the processing span's context")
        #expect(Set([requestSpan.traceID, send.traceID, process.traceID, handler.traceID]).count == 1, "one trace end to end")
        #expect(process.kind == .consumer)
        #expect(process.attributes["messaging.system"]?.toSpanAttribute() == "kafka".toSpanAttribute())
        #expect(process.attributes["messaging.consumer.group.name"]?.toSpanAttribute() == "traced".toSpanAttribute())
    }
}

/// Notes when the source it watches answers a poll with revoked partitions (a rebalance).
final class RevocationWatch: Sendable {
    private let revoked = Mutex(false)
    var sawRevocation: Bool { revoked.withLock { $0 } }

    func watching(_ source: any OutboxInboxSource) -> any OutboxInboxSource { WatchedSource(inner: source, watch: self) }

    fileprivate func note(_ poll: OutboxInboxPoll) {
        if !poll.revoked.isEmpty { revoked.withLock { $0 = true } }
    }
}

private struct WatchedSource: OutboxInboxSource {
    let inner: any OutboxInboxSource
    let watch: RevocationWatch

    var messagingSystem: String { inner.messagingSystem }
    func poll(timeout: Duration) async throws -> OutboxInboxPoll {
        let poll = try await inner.poll(timeout: timeout)
        watch.note(poll)
        return poll
    }
    func commit(_ positions: [OutboxInboxPartition: Int64]) async throws { try await inner.commit(positions) }
    func releaseRevoked(_ partitions: Set<OutboxInboxPartition>) async { await inner.releaseRevoked(partitions) }
    func close() async { await inner.close() }
}
