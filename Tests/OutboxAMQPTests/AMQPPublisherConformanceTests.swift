import Foundation
import Logging
import Outbox
import OutboxAMQP
import OutboxTestSupport
import OutboxTesting
import ServiceLifecycle
import Synchronization
import Testing

/// The publisher conformance suite against a real RabbitMQ (started by scripts/start-rabbitmq.sh).
/// The checks that restart or stop the broker run one at a time.
@Suite("AMQP publisher conformance", .serialized, .enabled(if: TestServer.rabbitmq.shouldRun, "set OUTBOX_AMQP_URL (scripts/test.sh does)"))
struct AMQPPublisherConformanceTests {
    @Test(arguments: OutboxPublisherConformance.Check.allCases)
    func conformance(_ check: OutboxPublisherConformance.Check) async throws {
        try await OutboxPublisherConformance(harness: AMQPHarness(url: try TestServer.rabbitmq.requireURL())).run(check)
    }
}

struct AMQPHarness: OutboxPublisherHarness {
    let url: String
    var name: String { "RabbitMQ" }

    func makeEnvironment() async throws -> any OutboxPublisherUnderTest {
        try await AMQPUnderTest(url: url)
    }
}

/// A topic exchange of its own per check, with one durable queue bound to every key, and a second
/// exchange no queue is bound to (where poison goes: unroutable). The broker's faults are real:
/// it is restarted, killed and stopped with the project's scripts.
final class AMQPUnderTest: OutboxPublisherUnderTest {
    static let acknowledgementTimeout = Duration.milliseconds(1500)
    let url: String
    let port: String
    let topic: String
    let queue: String
    let nowhere: String
    let amqp: AMQPPublisher
    private let group: ServiceGroup
    private let running: Task<Void, any Error>
    private let closed = Mutex(false)

    init(url: String) async throws {
        self.url = url
        port = String(url.split(separator: ":").last ?? "55672")
        try await AMQPServerControl.ensureRunning(port: port, url: url)
        let suffix = UUID().uuidString.prefix(8).lowercased()
        topic = "orders-\(suffix)"
        queue = "orders-\(suffix)-all"
        nowhere = "nowhere-\(suffix)"
        try Self.declare(url: url, topic: topic, queue: queue, nowhere: nowhere)
        amqp = try AMQPPublisher(configuration: AMQPPublisherConfiguration(url: url, acknowledgementTimeout: Self.acknowledgementTimeout),
                                 logger: OutboxStoreConformance.defaultLogger)
        let group = ServiceGroup(services: [amqp], logger: OutboxStoreConformance.defaultLogger)
        self.group = group
        running = Task { try await group.run() }
        _ = try await amqp.publish([])
    }

    static func declare(url: String, topic: String, queue: String, nowhere: String?) throws {
        let admin = try AMQPAdmin(url: url)
        try admin.declareExchange(topic, type: "topic")
        try admin.declareQueue(queue, boundTo: topic, bindingKey: "#")
        if let nowhere { try admin.declareExchange(nowhere, type: "topic") }
    }

    var publisher: any OutboxPublisher { amqp }
    var deliveryTimeout: Duration { Self.acknowledgementTimeout }

    func makePoisonMessage(key: String?) -> OutboxMessage {
        OutboxMessage(topic: nowhere, key: key, type: "Poison", text: "no queue is bound to this exchange")
    }

    func inject(_ fault: OutboxBrokerFault) async throws {
        if fault.isPartitionLeaderDown {
            _ = try await ProjectScript.run("restart-rabbitmq.sh", arguments: [port])
        } else if fault.retriableErrorCount != nil {
            // The exchange is gone for a while (being re-declared): its messages meet an outage.
            // Injected before anything was published; the queue stays and is bound again.
            try AMQPAdmin(url: url).delete(exchange: topic, queue: nil)
            let (url, topic, queue) = (url, topic, queue)
            Task {
                try await Task.sleep(for: .seconds(2))
                try Self.declare(url: url, topic: topic, queue: queue, nowhere: nil)
            }
        } else if fault.isFatalProducerError {
            _ = try await ProjectScript.run("restart-rabbitmq.sh", arguments: [port, "kill"])
        } else if fault.isOutage {
            _ = try await ProjectScript.run("restart-rabbitmq.sh", arguments: [port, "stop"])
        } else if fault.isRecovery {
            _ = try await ProjectScript.run("restart-rabbitmq.sh", arguments: [port, "start"])
        }
    }

    func consume(count: Int, timeout: Duration) async throws -> [OutboxConsumedMessage] {
        let deadline = ContinuousClock.now + timeout
        let admin = try AMQPAdmin(url: url)
        var read: [AMQPAdmin.ReceivedMessage] = []
        while true {
            read += try admin.take(from: queue)
            if read.count >= count || ContinuousClock.now >= deadline { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        return read.compactMap { message in
            guard let id = message.messageID.flatMap(UUID.init(uuidString:)) else { return nil }
            return OutboxConsumedMessage(id: id, key: message.headers["outbox-key"], payload: message.payload)
        }
    }

    func close() async throws {
        let first = closed.withLock { closed in defer { closed = true }; return !closed }
        guard first else { return }
        await group.triggerGracefulShutdown()
        try await running.value
        try await AMQPServerControl.ensureRunning(port: port, url: url)
        try? AMQPAdmin(url: url).delete(exchange: topic, queue: queue)
        try? AMQPAdmin(url: url).delete(exchange: nowhere, queue: nil)
    }
}

/// Starting the test broker again after a check stopped it.
enum AMQPServerControl {
    static func ensureRunning(port: String, url: String) async throws {
        if (try? AMQPAdmin(url: url)) != nil { return }
        _ = try await ProjectScript.run("restart-rabbitmq.sh", arguments: [port, "start"])
    }
}
