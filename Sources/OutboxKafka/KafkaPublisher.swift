import CRdKafka
import Foundation
public import Logging
public import Outbox
public import ServiceLifecycle
import Synchronization

/// Publishes outbox messages to Kafka through librdkafka, and learns the outcome of every message.
///
/// Run it as a `Service` in the same `ServiceGroup` as the relay, **listed before the relay**, so
/// that on shutdown (reverse order) the relay stops first and the publisher then flushes:
///
/// ```swift
/// let publisher = try KafkaPublisher(configuration: .init(bootstrapServers: "kafka:9092"), logger: logger)
/// let relay = OutboxRelay(store: store, publisher: publisher, logger: logger)
/// try await ServiceGroup(services: [publisher, relay], gracefulShutdownSignals: [.sigterm], logger: logger).run()
/// ```
///
/// On the wire: key = the message key (none when `nil`), value = the payload, headers = the message
/// headers (with the trace context captured at enqueue) plus `outbox-id` and `outbox-type`. The
/// producer is idempotent with `acks=all`, and keyed messages are partitioned with murmur2, as the
/// Java client does.
///
/// Each message's delivery report is mapped back to it: delivered, failed retriable, failed
/// permanently (too large, rejected, not authorised), or possibly persisted. librdkafka polls on a
/// dedicated thread, never on Swift's cooperative pool; a full local queue makes `publish` wait
/// for delivery reports rather than sleep. After a fatal producer error (an idempotence sequence
/// gap) the producer is rebuilt; what was in flight is reported failed (possibly persisted), so
/// nothing is lost and nothing is falsely acknowledged.
///
/// Ordering limit: messages of one key in one batch are sent in order and librdkafka keeps that
/// order through its own retries. A message refused at once (for example too large) holds back
/// the rest of its key (`.skipped`). A message the *broker* refuses permanently after later
/// messages of its key were sent cannot recall those; it is then a poison message, dead-lettered.
public final class KafkaPublisher: OutboxPublisher, Service, Sendable {
    private enum RunState { case created, running, stopped }

    private let configuration: KafkaPublisherConfiguration
    private let logger: Logger
    private let router: KafkaDeliveryRouter
    /// The current producer and how many times it was built; a rebuild bumps the generation.
    private let producer: Mutex<(handle: KafkaHandle?, generation: UInt64)>
    private let runState = Mutex(RunState.created)
    private let stateChanged = OutboxSignal()
    private let stopPolling = Atomic<Bool>(false)
    private let pollThreadRunning = Atomic<Bool>(false)
    private let pollThreadExited = OutboxSignal()
    /// Runs after a fatal error's producer is destroyed and before its successor is built.
    private let betweenProducers = Mutex<(@Sendable () -> Void)?>(nil)

    /// Creates the producer; invalid settings fail here, with the name of the setting.
    ///
    /// - Throws: ``KafkaError`` when librdkafka refuses a setting.
    public init(configuration: KafkaPublisherConfiguration, logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger
        let router = KafkaDeliveryRouter(logger: logger)
        self.router = router
        producer = Mutex((try Self.makeProducer(configuration, router), 1))
    }

    private static func makeProducer(_ configuration: KafkaPublisherConfiguration, _ router: KafkaDeliveryRouter) throws -> KafkaHandle {
        try KafkaHandle(kind: .producer, properties: configuration.effectiveProperties, callbackOwner: router) { raw in
            // One opaque for the handle: the router, kept alive by the handle that calls it.
            rd_kafka_conf_set_opaque(raw, Unmanaged.passUnretained(router).toOpaque())
            rd_kafka_conf_set_dr_msg_cb(raw) { _, message, opaque in
                guard let message, let opaque else { return }
                let router = Unmanaged<KafkaDeliveryRouter>.fromOpaque(opaque).takeUnretainedValue()
                let outcome = KafkaDeliveryOutcome.outcome(error: message.pointee.err, status: rd_kafka_message_status(message))
                router.deliver(token: outbox_kafka_message_token(message), outcome: outcome)
            }
            rd_kafka_conf_set_error_cb(raw) { handle, error, reason, opaque in
                guard let opaque else { return }
                let router = Unmanaged<KafkaDeliveryRouter>.fromOpaque(opaque).takeUnretainedValue()
                let text = reason.map { String(cString: $0) } ?? ""
                if error == RD_KAFKA_RESP_ERR__FATAL.rawValue, let handle {
                    var detail = [CChar](repeating: 0, count: 512)
                    let code = rd_kafka_fatal_error(handle, &detail, detail.count)
                    router.raiseFatal("\(KafkaError.name(of: code)): \(cText(detail))")
                } else {
                    router.logger.warning("Kafka client error", metadata: [
                        "kafka.error": "\(KafkaError.name(of: rd_kafka_resp_err_t(rawValue: error)))", "kafka.reason": "\(text)",
                    ])
                }
            }
        }
    }

    /// How many times the producer was rebuilt after a fatal error.
    public var producerRebuilds: Int { Int(producer.withLock { $0.generation }) - 1 }

    /// Sets what runs at each rebuild once the old producer is gone and before the new one exists:
    /// the tests' mock broker stops refusing requests there, as a real broker refuses only those of
    /// the producer whose sequence numbers went out of step (see ``KafkaMockCluster``).
    package func setBetweenProducers(_ action: (@Sendable () -> Void)?) {
        betweenProducers.withLock { $0 = action }
    }

    // MARK: - Service

    /// Polls delivery reports until graceful shutdown, then flushes what is in flight (up to
    /// `shutdownFlushTimeout`) and destroys the producer.
    ///
    /// - Throws: ``KafkaError`` when no broker answers within `brokerWaitAtStartup`.
    public func run() async throws {
        if let wait = configuration.brokerWaitAtStartup, let handle = producer.withLock({ $0.handle }) {
            let answered = await OutboxDedicatedThread.run(name: "outbox-kafka-startup") { handle.brokerAnswers(timeout: wait) }
            guard answered else {
                throw KafkaError(code: RD_KAFKA_RESP_ERR__TRANSPORT.rawValue, operation: "connect",
                                 message: "No Kafka broker answered at \(configuration.bootstrapServers) within \(wait); check the broker list and that the brokers are up.",
                                 isRetriable: true)
            }
        }
        pollThreadRunning.store(true, ordering: .releasing)
        let pollThread = Thread { [self] in
            pollLoop()
            pollThreadRunning.store(false, ordering: .releasing)
            pollThreadExited.signal()
        }
        pollThread.name = "outbox-kafka-poll"
        pollThread.start()
        setState(.running)
        logger.info("Kafka publisher running", metadata: ["kafka.bootstrap": "\(configuration.bootstrapServers)"])

        // Suspends until graceful shutdown (returns: flush what is in flight) or cancellation
        // (throws: abandon at once, as a crash would; the outbox still has every message).
        do {
            try await gracefulShutdown()
            await shutDown(flushing: true)
        } catch {
            await shutDown(flushing: false)
        }
    }

    private func shutDown(flushing: Bool) async {
        setState(.stopped)
        if flushing, let handle = producer.withLock({ $0.handle }) {
            let timeout = configuration.shutdownFlushTimeout.milliseconds
            let remaining = await OutboxDedicatedThread.run(name: "outbox-kafka-flush") { () -> Int32 in
                rd_kafka_flush(handle.pointer, timeout)
                return rd_kafka_outq_len(handle.pointer)
            }
            if remaining > 0 {
                logger.warning("Kafka publisher stopped with messages unacknowledged; they stay pending in the outbox",
                               metadata: ["kafka.unacknowledged": "\(remaining)"])
            }
        }
        stopPolling.store(true, ordering: .releasing)
        // The poll thread holds the handle while it polls: let it finish, so the producer is
        // destroyed here and now, not a moment after run() returned.
        while pollThreadRunning.load(ordering: .acquiring) {
            let generation = pollThreadExited.generation
            if !pollThreadRunning.load(ordering: .acquiring) { break }
            await pollThreadExited.wait(since: generation, timeout: .milliseconds(100))
        }
        router.failAllPending("Kafka producer stopped before the broker answered")
        producer.withLock { $0.handle = nil }
        logger.info("Kafka publisher stopped")
    }

    private func setState(_ state: RunState) {
        runState.withLock { $0 = state }
        stateChanged.signal()
    }

    private func pollLoop() {
        while !stopPolling.load(ordering: .acquiring) {
            guard let handle = producer.withLock({ $0.handle }) else {
                Thread.sleep(forTimeInterval: 0.05)
                rebuildIfNeeded()
                continue
            }
            if rd_kafka_poll(handle.pointer, 50) > 0 { router.progress.signal() }
            rebuildIfNeeded()
        }
    }

    /// After a fatal error librdkafka refuses to produce; purge what it holds (each purged message
    /// is reported failed, possibly persisted) and start a new producer.
    private func rebuildIfNeeded() {
        guard !stopPolling.load(ordering: .acquiring) else { return }
        let fatal = router.takeFatal()
        let missing = producer.withLock { $0.handle == nil }
        guard fatal != nil || (missing && runState.withLock({ $0 }) == .running) else { return }
        if let fatal {
            logger.error("Kafka producer hit a fatal error; rebuilding it", metadata: ["kafka.error": "\(fatal)"])
        }
        producer.withLock { producer in
            if let old = producer.handle {
                rd_kafka_purge(old.pointer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT)
                let deadline = Date().addingTimeInterval(5)
                while rd_kafka_outq_len(old.pointer) > 0 && Date() < deadline { rd_kafka_poll(old.pointer, 50) }
            }
            producer.handle = nil
            producer.generation += 1
            betweenProducers.withLock { $0 }?()
            router.failAllPending("Kafka producer hit a fatal error and was rebuilt")
            do {
                producer.handle = try Self.makeProducer(configuration, router)
            } catch {
                logger.error("Kafka producer could not be rebuilt; retrying", metadata: ["kafka.error": "\(error)"])
            }
        }
        router.progress.signal()
    }

    // MARK: - Publishing

    /// `kafka` in traces (OpenTelemetry's `messaging.system`).
    public var messagingSystem: String { "kafka" }

    public func publish(_ records: [OutboxRecord]) async throws -> [OutboxPublishOutcome] {
        try await waitUntilRunning()
        let batch = KafkaDeliveryBatch(count: records.count)
        let generation = producer.withLock { $0.generation }
        var failedKeys: Set<String> = []
        var producerLost = false
        for (index, record) in records.enumerated() {
            if producerLost || record.message.key.map(failedKeys.contains) == true {
                batch.complete(index, with: .skipped)
                continue
            }
            switch try await produce(record, into: batch, at: index, generation: generation) {
            case .accepted:
                break
            case .refused(let outcome):
                batch.complete(index, with: outcome)
                if let key = record.message.key { failedKeys.insert(key) }
            case .producerLost:
                // The producer this batch started on is gone (fatal error): earlier messages of any
                // key may have failed with it, so nothing more of this batch may go out on the new one.
                producerLost = true
                batch.complete(index, with: .skipped)
            }
        }
        return try await batch.outcomes()
    }

    private func waitUntilRunning() async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while true {
            let generation = stateChanged.generation
            switch runState.withLock({ $0 }) {
            case .running: return
            case .stopped:
                throw OutboxError(code: .publisherUnavailable, operation: "publish",
                                  message: "The Kafka publisher has stopped.", isRetriable: true)
            case .created:
                // The relay may start a moment before the publisher's run() in the same ServiceGroup.
                guard ContinuousClock.now < deadline else {
                    throw OutboxError(code: .publisherUnavailable, operation: "publish",
                                      message: "The Kafka publisher is not running; add it to the ServiceGroup (before the relay).",
                                      isRetriable: true)
                }
                await stateChanged.wait(since: generation, timeout: .milliseconds(100))
                try Task.checkCancellation()
            }
        }
    }

    private enum ProduceResult {
        case accepted
        case refused(OutboxPublishOutcome)
        case producerLost
    }

    /// Hands one message to librdkafka, on the producer of `generation` only.
    private func produce(_ record: OutboxRecord, into batch: KafkaDeliveryBatch, at index: Int, generation: UInt64) async throws -> ProduceResult {
        let token = router.register(batch, index: index)
        while true {
            if Task.isCancelled {
                router.cancel(token)
                throw CancellationError()
            }
            let progress = router.progress.generation
            let error = producer.withLock { producer -> rd_kafka_resp_err_t in
                guard producer.generation == generation, let handle = producer.handle else { return RD_KAFKA_RESP_ERR__FATAL }
                return Self.produce(record, token: token, on: handle)
            }
            if error == RD_KAFKA_RESP_ERR_NO_ERROR { return .accepted }
            if error == RD_KAFKA_RESP_ERR__QUEUE_FULL {
                // Wait for delivery reports to make room, not a fixed sleep.
                await router.progress.wait(since: progress, timeout: .milliseconds(100))
                continue
            }
            router.cancel(token)
            if error == RD_KAFKA_RESP_ERR__FATAL { return .producerLost }
            return .refused(KafkaDeliveryOutcome.outcome(error: error, status: RD_KAFKA_MSG_STATUS_NOT_PERSISTED))
        }
    }

    private static let outboxIDHeader = "outbox-id"
    private static let outboxTypeHeader = "outbox-type"

    private static func produce(_ record: OutboxRecord, token: UInt64, on handle: KafkaHandle) -> rd_kafka_resp_err_t {
        let message = record.message
        let headers = rd_kafka_headers_new(message.headers.count + 2)
        for header in message.headers {
            rd_kafka_header_add(headers, header.name, -1, header.value, -1)
        }
        rd_kafka_header_add(headers, outboxIDHeader, -1, OutboxUUIDText.string(message.id), -1)
        if let type = message.type { rd_kafka_header_add(headers, outboxTypeHeader, -1, type, -1) }

        // An empty key or payload must still be a non-NULL pointer: NULL means "no key" / a tombstone.
        var empty: UInt8 = 0
        let keyBytes = message.key.map { Array($0.utf8) }
        let error: OpaquePointer? = withUnsafeMutablePointer(to: &empty) { emptyPointer in
            message.payload.withUnsafeBytes { payload in
                let value = payload.baseAddress ?? UnsafeRawPointer(emptyPointer)
                guard let keyBytes else {
                    return outbox_kafka_produce(handle.pointer, message.topic, nil, 0, value, payload.count, headers, token)
                }
                return keyBytes.withUnsafeBytes { key in
                    outbox_kafka_produce(handle.pointer, message.topic, key.baseAddress ?? UnsafeRawPointer(emptyPointer), key.count,
                                         value, payload.count, headers, token)
                }
            }
        }
        guard let error else { return RD_KAFKA_RESP_ERR_NO_ERROR }
        let code = rd_kafka_error_code(error)
        rd_kafka_error_destroy(error)
        rd_kafka_headers_destroy(headers)  // not taken by librdkafka on failure
        return code
    }
}
