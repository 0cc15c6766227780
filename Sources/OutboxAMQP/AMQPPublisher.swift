import CRabbitMQ
import Foundation
public import Logging
public import Outbox
public import ServiceLifecycle
import Synchronization

/// Publishes outbox messages to RabbitMQ (AMQP 0-9-1) through rabbitmq-c, with publisher confirms.
///
/// Run it as a `Service` in the same `ServiceGroup` as the relay, **listed before the relay**, so
/// that on shutdown the relay stops first and the publisher then waits for the confirms in flight:
///
/// ```swift
/// let publisher = try AMQPPublisher(configuration: .init(url: "amqp://outbox:secret@rabbit:5672/%2f"), logger: logger)
/// let relay = OutboxRelay(store: store, publisher: publisher, logger: logger)
/// try await ServiceGroup(services: [publisher, relay], gracefulShutdownSignals: [.sigterm], logger: logger).run()
/// ```
///
/// On the wire: exchange = `exchangePrefix` + the message's topic; routing key = the message key
/// (empty when there is none); body = the payload; persistent (delivery mode 2);
/// `message_id` = the outbox id; `type` = the message type; headers = the message's headers (the
/// trace context included) plus `outbox-id` and `outbox-key`, as AMQP long strings. Every message
/// is published `mandatory`: one that no queue takes comes back and is a permanent failure
/// (dead-lettered with its reason), not silently dropped. A missing exchange is an outage of its
/// topic (no attempt counted), like a broker that is down or restarting.
///
/// Order: as for NATS, one message per key in flight and the rest pipelined (see
/// `OutboxKeyOrderedBatch`), so a message that fails is never overtaken by a later one of its key.
public final class AMQPPublisher: OutboxPublisher, Service, Sendable {
    private enum RunState { case created, running, stopped }

    private let configuration: AMQPPublisherConfiguration
    private let logger: Logger
    private let link: AMQPLink
    private let runState = Mutex(RunState.created)
    private let stateChanged = OutboxSignal()

    /// Checks the configuration; the connection is made when the service runs.
    ///
    /// - Throws: ``OutboxError`` (`.invalidConfiguration`) naming what to fix, never the password.
    public init(configuration: AMQPPublisherConfiguration, logger: Logger) throws {
        if let problem = configuration.problems().first {
            throw OutboxError(code: .invalidConfiguration, operation: "configure AMQP", message: problem)
        }
        self.configuration = configuration
        self.logger = logger
        link = try AMQPLink(configuration: configuration, logger: logger)
    }

    // MARK: - Service

    /// Connects, then publishes until graceful shutdown; then waits (up to the acknowledgement
    /// timeout) for the confirms in flight and closes the connection. The connection is kept up
    /// (reconnecting) for as long as it runs.
    ///
    /// - Throws: ``OutboxError`` when the broker does not answer within `connectTimeout` or
    ///   refuses the login.
    public func run() async throws {
        let failure = Mutex<OutboxError?>(nil)
        let link = link
        let generation = link.connected.generation
        let ioThread = Task.detached {
            await OutboxDedicatedThread.run(name: "outbox-amqp-io") {
                link.run { error in failure.withLock { $0 = error } }
                link.close()
            }
        }
        // Wait for the first connection (or its failure).
        while !link.connectedNow {
            if let error = failure.withLock({ $0 }) {
                setState(.stopped)
                await ioThread.value
                throw error
            }
            await link.connected.wait(since: generation, timeout: .milliseconds(100))
            if Task.isCancelled { break }
        }
        setState(.running)
        do {
            try await gracefulShutdown()
            setState(.stopped)
            let deadline = ContinuousClock.now + configuration.acknowledgementTimeout
            while link.inFlight.load(ordering: .relaxed) > 0 && ContinuousClock.now < deadline {
                let seen = link.progress.generation
                await link.progress.wait(since: seen, timeout: .milliseconds(100))
            }
            if link.inFlight.load(ordering: .relaxed) > 0 {
                logger.warning("AMQP publisher stopped with messages unconfirmed; they stay pending in the outbox",
                               metadata: ["amqp.unconfirmed": "\(link.inFlight.load(ordering: .relaxed))"])
            }
        } catch {
            setState(.stopped)
        }
        link.stop()
        await ioThread.value
        logger.info("AMQP publisher stopped")
    }

    private func setState(_ state: RunState) {
        runState.withLock { $0 = state }
        stateChanged.signal()
    }

    // MARK: - Publishing

    /// `rabbitmq` in traces (OpenTelemetry's `messaging.system`).
    public var messagingSystem: String { "rabbitmq" }

    public func publish(_ records: [OutboxRecord]) async throws -> [OutboxPublishOutcome] {
        try await waitUntilRunning()
        let (link, configuration) = (link, configuration)
        return try await OutboxKeyOrderedBatch.publish(
            records, maximumInFlight: configuration.maximumInFlight, inFlight: { link.inFlight.load(ordering: .relaxed) },
            waitForRoom: {
                while link.inFlight.load(ordering: .relaxed) >= configuration.maximumInFlight {
                    let seen = link.progress.generation
                    await link.progress.wait(since: seen, timeout: .milliseconds(100))
                    try Task.checkCancellation()
                }
            },
            send: { index, sink in
                let message = records[index].message
                let exchange = configuration.exchangePrefix + message.topic
                if let problem = AMQPWireChecks.problem(exchange: exchange, message: message) {
                    return .failed(problem, isRetriable: false)
                }
                let id = OutboxUUIDText.string(message.id)
                var headers = message.headers.map { ($0.name, $0.value) }
                headers.append(("outbox-id", id))
                if let key = message.key { headers.append(("outbox-key", key)) }
                link.enqueue(AMQPLink.Request(exchange: exchange, routingKey: Array((message.key ?? "").utf8), messageID: id,
                                              type: message.type, headers: headers, payload: message.payload, sink: sink, index: index))
                return nil
            })
    }

    private func waitUntilRunning() async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while true {
            let generation = stateChanged.generation
            switch runState.withLock({ $0 }) {
            case .running: return
            case .stopped:
                throw OutboxError(code: .publisherUnavailable, operation: "publish", message: "The AMQP publisher has stopped.", isRetriable: true)
            case .created:
                guard ContinuousClock.now < deadline else {
                    throw OutboxError(code: .publisherUnavailable, operation: "publish",
                                      message: "The AMQP publisher is not running; add it to the ServiceGroup (before the relay).", isRetriable: true)
                }
                await stateChanged.wait(since: generation, timeout: .milliseconds(100))
                try Task.checkCancellation()
            }
        }
    }
}

/// What AMQP 0-9-1 cannot carry, found before anything is sent.
enum AMQPWireChecks {
    static func problem(exchange: String, message: OutboxMessage) -> String? {
        if exchange.isEmpty { return "The topic is empty: it names no exchange (the default exchange is not used)" }
        if exchange.utf8.count > 255 { return "The exchange name (prefix and topic) is longer than AMQP's 255 bytes" }
        if (message.key ?? "").utf8.count > 255 { return "The key is longer than AMQP's 255-byte routing key" }
        if (message.type ?? "").utf8.count > 255 { return "The type is longer than AMQP's 255-byte type property" }
        for header in message.headers where header.name.utf8.count > 255 || header.name.isEmpty {
            return "Header name \(header.name.prefix(40).debugDescription) is empty or longer than AMQP's 255 bytes"
        }
        if message.headers.contains(where: { $0.name.utf8.contains(0) || $0.value.utf8.contains(0) })
            || (message.key ?? "").utf8.contains(0) || exchange.utf8.contains(0) || (message.type ?? "").utf8.contains(0) {
            return "A header, the key, the type or the topic contains a NUL character, which this AMQP client cannot send"
        }
        return nil
    }
}
