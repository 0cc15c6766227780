import CNATS
import Foundation
public import Logging
public import Outbox
public import ServiceLifecycle
import Synchronization

/// Publishes outbox messages to NATS JetStream through the NATS C client, with one JetStream
/// acknowledgement per message.
///
/// Run it as a `Service` in the same `ServiceGroup` as the relay, **listed before the relay**, so
/// that on shutdown (reverse order) the relay stops first and the publisher then waits for the
/// acknowledgements still in flight:
///
/// ```swift
/// let publisher = try NATSPublisher(configuration: .init(servers: "nats://nats:4222"), logger: logger)
/// let relay = OutboxRelay(store: store, publisher: publisher, logger: logger)
/// try await ServiceGroup(services: [publisher, relay], gracefulShutdownSignals: [.sigterm], logger: logger).run()
/// ```
///
/// On the wire: subject = `subjectPrefix` + the message's topic; data = the payload; headers =
/// the message headers (with the trace context captured at enqueue) plus `outbox-id`,
/// `outbox-type`, `outbox-key` and **`Nats-Msg-Id` = the outbox id**, so the stream drops a
/// message it already stored within its duplicate window (2 minutes by default): a message a
/// crashed relay published and could not acknowledge in the outbox is published again, and
/// the stream keeps one copy. The stream must exist; a subject no stream stores is an outage
/// (no attempt counted), not a failure of the message.
///
/// Order: messages of different keys (and messages without a key) are pipelined, up to
/// `maximumInFlight` unacknowledged; messages of one key go one at a time, each after the previous
/// one was stored. Pipelining one key was tried and broke order: while a server restarts, its
/// streams come back a moment after it takes connections, so of two messages sent back to back
/// the first met "no responders" and the second was stored (the conformance check
/// `survivesPartitionLeaderDown` caught it). JetStream cannot refuse the second on the first's
/// failure the way Kafka's idempotent producer does, so the publisher never sends it before the
/// first is stored. A failed message holds back the rest of its key (`.skipped`). Nothing is
/// queued while the connection is down (the client's reconnect buffer is off): a message that
/// cannot be sent is reported unavailable at once.
public final class NATSPublisher: OutboxPublisher, Service, Sendable {
    private enum RunState { case created, running, stopped }

    private let configuration: NATSPublisherConfiguration
    private let logger: Logger
    private let router: NATSAcknowledgementRouter
    private let connection = Mutex<NATSConnection?>(nil)
    private let runState = Mutex(RunState.created)
    private let stateChanged = OutboxSignal()

    /// Checks the configuration; the connection is made when the service runs.
    ///
    /// - Throws: ``OutboxError`` (`.invalidConfiguration`) naming what to fix.
    public init(configuration: NATSPublisherConfiguration, logger: Logger) throws {
        if let problem = configuration.problems().first {
            throw OutboxError(code: .invalidConfiguration, operation: "configure NATS", message: problem)
        }
        self.configuration = configuration
        self.logger = logger
        router = NATSAcknowledgementRouter(acknowledgementTimeout: configuration.acknowledgementTimeout)
    }

    // MARK: - Service

    /// Connects, then publishes until graceful shutdown; then waits (up to the acknowledgement
    /// timeout) for what is in flight and closes the connection.
    ///
    /// - Throws: ``OutboxError`` when no server answers within `connectTimeout`, or the login,
    ///   TLS or URL is refused.
    public func run() async throws {
        let configuration = configuration
        let router = router
        let opened = await OutboxDedicatedThread.run(name: "outbox-nats-connect") {
            Result { try NATSConnection(configuration: configuration, router: router) }
        }
        let connection = try opened.get()
        self.connection.withLock { $0 = connection }
        setState(.running)
        logger.info("NATS publisher running", metadata: ["nats.servers": "\(configuration.redactedServers)"])
        do {
            try await gracefulShutdown()
            setState(.stopped)
            let waited = await router.waitUntilIdle(timeout: configuration.acknowledgementTimeout)
            if !waited {
                logger.warning("NATS publisher stopped with messages unacknowledged; they stay pending in the outbox",
                               metadata: ["nats.unacknowledged": "\(router.pendingCount)"])
            }
        } catch {
            setState(.stopped)
        }
        self.connection.withLock { $0 = nil }
        await OutboxDedicatedThread.run(name: "outbox-nats-close") { connection.close() }
        router.failAllPending(.unavailable("the NATS publisher stopped before the server acknowledged the message"))
        logger.info("NATS publisher stopped")
    }

    private func setState(_ state: RunState) {
        runState.withLock { $0 = state }
        stateChanged.signal()
    }

    // MARK: - Publishing

    /// `nats` in traces (OpenTelemetry's `messaging.system`).
    public var messagingSystem: String { "nats" }

    public func publish(_ records: [OutboxRecord]) async throws -> [OutboxPublishOutcome] {
        let connection = try await runningConnection()
        let (router, configuration) = (router, configuration)
        return try await OutboxKeyOrderedBatch.publish(
            records, maximumInFlight: configuration.maximumInFlight, inFlight: { router.pendingCount },
            waitForRoom: { try await router.waitForRoom(limit: configuration.maximumInFlight) },
            send: { index, sink in
                let record = records[index]
                return router.send(record, subject: configuration.subjectPrefix + record.message.topic, sink: sink, index: index, on: connection)
            })
    }

    private func runningConnection() async throws -> NATSConnection {
        let deadline = ContinuousClock.now + .seconds(30)
        while true {
            let generation = stateChanged.generation
            switch runState.withLock({ $0 }) {
            case .running:
                if let connection = connection.withLock({ $0 }) { return connection }
                fallthrough
            case .stopped:
                throw OutboxError(code: .publisherUnavailable, operation: "publish",
                                  message: "The NATS publisher has stopped.", isRetriable: true)
            case .created:
                // The relay may start a moment before the publisher's run() in the same ServiceGroup.
                guard ContinuousClock.now < deadline else {
                    throw OutboxError(code: .publisherUnavailable, operation: "publish",
                                      message: "The NATS publisher is not running; add it to the ServiceGroup (before the relay).",
                                      isRetriable: true)
                }
                await stateChanged.wait(since: generation, timeout: .milliseconds(100))
                try Task.checkCancellation()
            }
        }
    }
}
