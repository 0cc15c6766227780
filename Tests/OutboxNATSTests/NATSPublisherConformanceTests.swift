import Foundation
import Logging
import Outbox
import OutboxNATS
import OutboxTestSupport
import OutboxTesting
import ServiceLifecycle
import Synchronization
import Testing

/// The publisher conformance suite against a real nats-server with JetStream (started by
/// scripts/start-nats.sh). The checks that restart or stop the server run one at a time.
@Suite("NATS publisher conformance", .serialized, .enabled(if: TestServer.nats.shouldRun, "set OUTBOX_NATS_URL (scripts/test.sh does)"))
struct NATSPublisherConformanceTests {
    @Test(arguments: OutboxPublisherConformance.Check.allCases)
    func conformance(_ check: OutboxPublisherConformance.Check) async throws {
        try await OutboxPublisherConformance(harness: NATSHarness(url: try TestServer.nats.requireURL())).run(check)
    }
}

/// A fresh stream per check on the test server; the server's faults are real: it is restarted,
/// killed and stopped with the project's scripts.
struct NATSHarness: OutboxPublisherHarness {
    let url: String
    var name: String { "NATS JetStream" }

    func makeEnvironment() async throws -> any OutboxPublisherUnderTest {
        try await NATSUnderTest(url: url)
    }
}

final class NATSUnderTest: OutboxPublisherUnderTest {
    static let maximumMessageBytes: Int32 = 100_000
    static let acknowledgementTimeout = Duration.milliseconds(1500)
    let url: String
    let port: String
    let topic: String
    let stream: String
    let nats: NATSPublisher
    private let group: ServiceGroup
    private let running: Task<Void, any Error>
    private let closed = Mutex(false)

    init(url: String) async throws {
        self.url = url
        port = String(url.split(separator: ":").last ?? "54222")
        // A check that stopped the server leaves it stopped: start it again.
        try await NATSServerControl.ensureRunning(port: port, url: url)
        let suffix = UUID().uuidString.prefix(8).lowercased()
        topic = "orders.\(suffix)"
        stream = "ORDERS_\(suffix)"
        let streams = try NATSStreams(servers: url)
        try streams.createStream(stream, subjects: [topic], maximumMessageBytes: Self.maximumMessageBytes)
        nats = try NATSPublisher(
            configuration: NATSPublisherConfiguration(servers: url, acknowledgementTimeout: Self.acknowledgementTimeout),
            logger: OutboxStoreConformance.defaultLogger)
        let group = ServiceGroup(services: [nats], logger: OutboxStoreConformance.defaultLogger)
        self.group = group
        running = Task { try await group.run() }
        // An empty publish returns once the publisher is running (connected).
        _ = try await nats.publish([])
    }

    var publisher: any OutboxPublisher { nats }
    var deliveryTimeout: Duration { Self.acknowledgementTimeout }

    func makePoisonMessage(key: String?) -> OutboxMessage {
        OutboxMessage(topic: topic, key: key, type: "Poison", payload: Array(repeating: 0x50, count: Int(Self.maximumMessageBytes) * 2))
    }

    func inject(_ fault: OutboxBrokerFault) async throws {
        if fault.isPartitionLeaderDown {
            // One server: the one that leads the stream restarts (the stream survives, on disk).
            _ = try await ProjectScript.run("restart-nats.sh", arguments: [port])
        } else if fault.retriableErrorCount != nil {
            // No stream answers for the subject for a while (a stream being re-created): every
            // publish meanwhile gets "no responders". Injected before anything was stored.
            let streams = try NATSStreams(servers: url)
            try streams.deleteStream(stream)
            let (url, stream, topic) = (url, stream, topic)
            Task {
                try await Task.sleep(for: .seconds(2))
                try NATSStreams(servers: url).createStream(stream, subjects: [topic], maximumMessageBytes: Self.maximumMessageBytes)
            }
        } else if fault.isFatalProducerError {
            // The harshest end of a connection: the server is killed and comes back.
            _ = try await ProjectScript.run("restart-nats.sh", arguments: [port, "kill"])
        } else if fault.isOutage {
            _ = try await ProjectScript.run("restart-nats.sh", arguments: [port, "stop"])
        } else if fault.isRecovery {
            _ = try await ProjectScript.run("restart-nats.sh", arguments: [port, "start"])
        }
    }

    func consume(count: Int, timeout: Duration) async throws -> [OutboxConsumedMessage] {
        let deadline = ContinuousClock.now + timeout
        let streams = try NATSStreams(servers: url)
        var read: [NATSStreams.StoredMessage] = []
        while true {
            read = try streams.read(stream)
            if read.count >= count || ContinuousClock.now >= deadline { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        return read.compactMap { stored in
            guard let id = stored.headers["outbox-id"].flatMap(UUID.init(uuidString:)) else { return nil }
            return OutboxConsumedMessage(id: id, key: stored.headers["outbox-key"], payload: stored.payload)
        }
    }

    func close() async throws {
        let first = closed.withLock { closed in defer { closed = true }; return !closed }
        guard first else { return }
        await group.triggerGracefulShutdown()
        try await running.value
        try await NATSServerControl.ensureRunning(port: port, url: url)
        try? NATSStreams(servers: url).deleteStream(stream)
    }
}

/// Starting the test server again after a check stopped it.
enum NATSServerControl {
    static func ensureRunning(port: String, url: String) async throws {
        if (try? NATSStreams(servers: url, timeout: .milliseconds(500))) != nil { return }
        _ = try await ProjectScript.run("restart-nats.sh", arguments: [port, "start"])
    }
}
