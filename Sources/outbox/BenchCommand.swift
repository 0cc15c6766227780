import ArgumentParser
import Foundation
import GRDB
import Logging
import Outbox
import OutboxKafka
import OutboxSQLite
import ServiceLifecycle

/// Throughput of the relay against the raw limits measured in the same run.
///
/// Scenarios so far: *drain* a preloaded backlog into an in-process mock Kafka cluster, beside the
/// raw store limit (batched claim + delete, no broker) and the raw producer limit (the same
/// publisher, no store); and *steady*: an offered rate for a few seconds, with commit → broker-ack
/// latency. Store by URL (SQLite by default, or PostgreSQL). The bench issue extends the rest.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure relay throughput and latency (store → mock Kafka) against the raw store and producer limits.")

    @Option(help: "The store URL (default: a temporary SQLite file). A PostgreSQL outbox is created in a schema of its own and dropped afterwards.")
    var store: String?

    @Option(help: "Steady scenario: offered messages per second (0 skips it).")
    var rate: Int = 1000

    @Option(help: "Steady scenario: seconds to run.")
    var seconds: Int = 5

    @Option(help: "Messages in the backlog.")
    var messages: Int = 100_000

    @Option(help: "Payload bytes per message.")
    var payloadBytes: Int = 200

    @Option(help: "Distinct keys.")
    var keys: Int = 1000

    @Option(help: "Relay batch size.")
    var batchSize: Int = 500

    @Option(help: "Folder for the database (default: a temporary one, removed afterwards).")
    var folder: String?

    func validate() throws {
        guard (1...10_000_000).contains(messages) else { throw ValidationError("--messages must be between 1 and 10000000.") }
        guard (0...1_000_000).contains(payloadBytes) else { throw ValidationError("--payload-bytes must be between 0 and 1000000.") }
        guard keys >= 1 else { throw ValidationError("--keys must be at least 1.") }
        guard (1...100_000).contains(batchSize) else { throw ValidationError("--batch-size must be between 1 and 100000.") }
    }

    func run() async throws {
        var logger = Logger(label: "outbox.bench") { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = .warning
        let workspace = try DemoWorkspace(folder: folder)
        defer { if folder == nil { workspace.remove() } }
        let payload = [UInt8](repeating: 0x61, count: payloadBytes)

        let cluster = try KafkaMockCluster(brokers: 3)
        try cluster.createTopic("bench", partitions: 6, replicationFactor: 3)
        let kafka = try KafkaPublisher(
            configuration: KafkaPublisherConfiguration(bootstrapServers: cluster.bootstrapServers,
                                                       properties: KafkaPublisherConfiguration.mockClusterProperties),
            logger: logger)
        let group = ServiceGroup(services: [kafka], logger: logger)
        let publishing = Task { try await group.run() }
        _ = try await kafka.publish([])
        print("bench: \(messages) messages of \(payloadBytes) bytes over \(keys) keys, batches of \(batchSize); RSS \(Self.residentMegabytes()) MB")

        // 1. Raw producer: the publisher alone, two batches in flight as the relay keeps them.
        let producerRate = try await measureProducer(kafka, payload: payload)
        print(String(format: "  raw producer            %10.0f msg/s   RSS %d MB (peak %d MB)", producerRate, Self.residentMegabytes(), Self.peakMegabytes()))

        let target = try await BenchStore.open(url: store, workspace: workspace, logger: logger)
        defer { Task { await target.close() } }
        print("  store                   \(target.name)")

        // 2. Raw store: claim + delete in batches, no broker.
        try await preload(target, payload: payload)
        let storeRate = try await measureStore(target.store)
        print(String(format: "  raw store (claim+delete) %9.0f msg/s", storeRate))

        // 3. The relay: backlog → Kafka.
        try await preload(target, payload: payload)
        let relayRate = try await measureRelay(target.store, kafka, logger: logger)
        print(String(format: "  relay drain → Kafka     %10.0f msg/s   %.2f× the slower raw limit", relayRate, relayRate / min(storeRate, producerRate)))

        // 4. Steady: an offered rate, commit → broker ack latency.
        if rate > 0 {
            let latencies = try await measureSteady(target, kafka, payload: payload, logger: logger)
            func percentile(_ fraction: Double) -> Double { latencies.isEmpty ? 0 : latencies[min(latencies.count - 1, Int(Double(latencies.count) * fraction))] }
            print(String(format: "  steady %d msg/s for %d s  commit→ack p50 %.1f ms, p99 %.1f ms, p999 %.1f ms, max %.1f ms (%d messages)",
                         rate, seconds, percentile(0.5), percentile(0.99), percentile(0.999), latencies.last ?? 0, latencies.count))
        }
        print("  memory                  RSS \(Self.residentMegabytes()) MB, peak \(Self.peakMegabytes()) MB")

        await group.triggerGracefulShutdown()
        try await publishing.value
        withExtendedLifetime(cluster) {}
    }

    private func records(_ range: Range<Int>, payload: [UInt8]) -> [OutboxRecord] {
        range.map { index in
            OutboxRecord(message: OutboxMessage(topic: "bench", key: "key-\(index % keys)", type: "Bench", payload: payload),
                         sequence: Int64(index), partition: 0)
        }
    }

    private func measureProducer(_ kafka: KafkaPublisher, payload: [UInt8]) async throws -> Double {
        let started = ContinuousClock.now
        var next = 0
        var reported = 0
        try await withThrowingTaskGroup(of: Int.self) { group in
            var inFlight = 0
            while next < messages || inFlight > 0 {
                while inFlight < 2 && next < messages {
                    let batch = records(next..<min(next + batchSize, messages), payload: payload)
                    next += batch.count
                    inFlight += 1
                    group.addTask { try await kafka.publish(batch).filter(\.isDelivered).count }
                }
                reported += try await group.next() ?? 0
                inFlight -= 1
                if next % 100_000 < batchSize && messages >= 500_000 {
                    FileHandle.standardError.write(Data("    \(next) produced, RSS \(Self.residentMegabytes()) MB\n".utf8))
                }
            }
        }
        guard reported == messages else {
            throw OutboxError(code: .publisherUnavailable, operation: "bench", message: "Only \(reported) of \(messages) messages were delivered.")
        }
        return Double(messages) / (ContinuousClock.now - started).timeInterval
    }

    private func preload(_ target: BenchStore, payload: [UInt8]) async throws {
        for start in stride(from: 0, to: messages, by: 1000) {
            let batch = (start..<min(start + 1000, messages)).map {
                OutboxMessage(topic: "bench", key: "key-\($0 % keys)", type: "Bench", payload: payload)
            }
            try await target.enqueue(batch)
        }
    }

    /// Offers `rate` single-message transactions per second for `seconds`, relayed to Kafka.
    private func measureSteady(_ target: BenchStore, _ kafka: KafkaPublisher, payload: [UInt8], logger: Logger) async throws -> [Double] {
        let counter = CountingPublisher(kafka)
        let relay = OutboxRelay(store: target.store, publisher: counter,
                                configuration: OutboxRelayConfiguration(relayID: "bench-steady", batchSize: batchSize), logger: logger)
        let group = ServiceGroup(services: target.services + [relay], logger: logger)
        let relaying = Task { try await group.run() }
        try await Task.sleep(for: .seconds(1))  // leases and listener settle
        let total = rate * seconds
        let started = ContinuousClock.now
        for index in 0..<total {
            let due = started + .nanoseconds(Int64(index) * 1_000_000_000 / Int64(rate))
            if due > .now { try await Task.sleep(until: due, clock: .continuous) }
            try await target.enqueue([OutboxMessage(topic: "bench", key: "key-\(index % keys)", type: "Bench", payload: payload)])
        }
        while counter.delivered < total && ContinuousClock.now - started < .seconds(seconds + 30) {
            try await Task.sleep(for: .milliseconds(5))
        }
        await group.triggerGracefulShutdown()
        try await relaying.value
        return counter.latencies.sorted()
    }

    private func measureStore(_ store: any OutboxStore) async throws -> Double {
        let grant = try await store.heartbeat(OutboxHeartbeat(relayID: "bench-raw", leaseDuration: .seconds(600)))
        let partitions = grant.owned.sorted()
        let started = ContinuousClock.now
        var drained = 0
        while true {
            let batch = try await store.claim(partitions: partitions, limit: batchSize, now: Date())
            if batch.isEmpty { break }
            _ = try await store.acknowledge(OutboxAcknowledgement(
                relayID: "bench-raw", delivered: batch.map { OutboxMessageReference(sequence: $0.sequence, partition: $0.partition) }))
            drained += batch.count
        }
        try await store.resign(relayID: "bench-raw")
        return Double(drained) / (ContinuousClock.now - started).timeInterval
    }

    private func measureRelay(_ store: any OutboxStore, _ kafka: KafkaPublisher, logger: Logger) async throws -> Double {
        let counter = CountingPublisher(kafka)
        let relay = OutboxRelay(store: store, publisher: counter,
                                configuration: OutboxRelayConfiguration(relayID: "bench-relay", batchSize: batchSize), logger: logger)
        let group = ServiceGroup(services: [relay], logger: logger)
        let started = ContinuousClock.now
        let relaying = Task { try await group.run() }
        while counter.delivered < messages {
            try await Task.sleep(for: .milliseconds(5))
            if ContinuousClock.now - started > .seconds(600) { break }
        }
        let elapsed = ContinuousClock.now - started
        await group.triggerGracefulShutdown()
        try await relaying.value
        return Double(counter.delivered) / elapsed.timeInterval
    }

    /// Resident memory now, from /proc.
    static func residentMegabytes() -> Int { procStatus("VmRSS:") / 1024 }
    /// Peak resident memory, from /proc.
    static func peakMegabytes() -> Int { procStatus("VmHWM:") / 1024 }

    private static func procStatus(_ field: String) -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in text.split(separator: "\n") where line.hasPrefix(field) {
            return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "0") ?? 0
        }
        return 0
    }
}
