import Foundation
public import Logging
public import Metrics
import ServiceContextModule
public import ServiceLifecycle
import Synchronization
public import Tracing

/// How an ``OutboxInboxConsumer`` schedules, retries and commits.
public struct OutboxInboxConfiguration: Sendable {
    /// The consumer group; inbox records are per group (groups are independent).
    public var group: String
    /// Store transactions running at once, over different keys. Default 16.
    public var maximumConcurrentHandlers: Int
    /// Messages (of different keys) one store transaction may handle together, when the consumer
    /// is behind: one commit for many messages. A handler that throws rolls its batch back, and the
    /// batch is handled again one message at a time, so only the failing message's key waits.
    /// With tracing on, batches are of one (each message's handler runs in its own span). Default 100.
    public var maximumBatchSize: Int
    /// Messages read ahead of the handlers; polling pauses above it. Default 2,000.
    public var maximumBufferedMessages: Int
    /// Attempts before a message is dead-lettered, and the backoff between them. Default: 5
    /// attempts, 100 ms doubling to 30 s with 20 % jitter.
    public var retryPolicy: OutboxRetryPolicy
    /// How often finished offsets are committed. Default 500 ms.
    public var commitInterval: Duration
    /// Longest wait for messages in one poll. Default 200 ms.
    public var pollTimeout: Duration
    /// On shutdown or revocation, how long handlers in flight may take to finish. Default 10 s.
    public var shutdownGracePeriod: Duration
    /// How long one store call (a transaction with its handlers, a dead-lettering) may take before
    /// it counts as a store outage and is tried again: a driver can wait forever on a connection
    /// the server dropped (seen after a PostgreSQL restart). Longer than your slowest handler.
    public var storeCallTimeout: Duration
    /// Where metrics go; `nil` uses the bootstrapped `MetricsSystem`.
    public var metricsFactory: (any MetricsFactory)?
    /// Where handling spans go; `nil` uses the bootstrapped `InstrumentationSystem` tracer.
    public var tracer: (any Tracer)?

    /// Creates a configuration; every argument but the group has a default.
    public init(
        group: String,
        maximumConcurrentHandlers: Int = 16,
        maximumBatchSize: Int = 100,
        maximumBufferedMessages: Int = 2_000,
        retryPolicy: OutboxRetryPolicy = OutboxRetryPolicy(maximumAttempts: 5, maximumPermanentFailureAttempts: 5, maximumBackoff: .seconds(30)),
        commitInterval: Duration = .milliseconds(500),
        pollTimeout: Duration = .milliseconds(200),
        shutdownGracePeriod: Duration = .seconds(10),
        storeCallTimeout: Duration = .seconds(30),
        metricsFactory: (any MetricsFactory)? = nil,
        tracer: (any Tracer)? = nil
    ) {
        self.storeCallTimeout = storeCallTimeout
        self.metricsFactory = metricsFactory
        self.tracer = tracer
        self.group = group
        self.maximumConcurrentHandlers = max(1, maximumConcurrentHandlers)
        self.maximumBatchSize = max(1, maximumBatchSize)
        self.maximumBufferedMessages = max(1, maximumBufferedMessages)
        self.retryPolicy = retryPolicy
        self.commitInterval = commitInterval
        self.pollTimeout = pollTimeout
        self.shutdownGracePeriod = shutdownGracePeriod
    }
}

/// Hands each message a source delivers to the application's handler exactly once per group,
/// inside a transaction of the application's store (see ``OutboxInboxStore``), in per-key order,
/// and commits offsets only behind what is finished.
///
/// - Order (I4): one message per key (within a partition) at a time; different keys in parallel up
///   to `maximumConcurrentHandlers`. A handler that throws is retried with backoff and jitter,
///   holding back only its key; after `retryPolicy.maximumAttempts` it is dead-lettered with its
///   reason and its key goes on.
/// - A store that cannot be reached (``OutboxError`` `.storeUnavailable`) is not the message's
///   fault: the message waits and no attempt is counted.
/// - Offsets (I3): committed every `commitInterval`, per partition up to the lowest message not
///   finished; a consumer that dies re-reads what it had not finished, and the inbox skips what
///   it had.
/// - Shutdown and rebalance (I5): stops taking work for the partitions concerned, lets running
///   handlers finish (up to `shutdownGracePeriod`), commits, then lets the partitions go or
///   leaves the group.
public final class OutboxInboxConsumer<Store: OutboxInboxStore>: Service, Sendable {
    private struct State: Sendable {
        var queue = OutboxInboxKeyQueue()
        var offsets = OutboxInboxOffsets()
        /// Messages being handled.
        var running = 0
        /// Store transactions running (each handles a batch of one or more messages).
        var runningTasks = 0
        /// Failed attempts of messages waiting for a retry, by partition and offset.
        var attempts: [OutboxInboxPartition: [Int64: Int]] = [:]
        var stopping = false
        /// Offset commits failed in a row (a rebalance in progress fails a commit or two).
        var commitFailures = 0
    }

    private let store: Store
    private let source: any OutboxInboxSource
    private let handler: Store.Handler
    private let configuration: OutboxInboxConfiguration
    private let logger: Logger
    private let state = Mutex(State())
    private let wakeUp = OutboxSignal()
    private let metrics: InboxMetrics
    /// `nil` without a tracer: no spans, no cost.
    private let tracer: (any Tracer)?

    /// Creates a consumer.
    public init(store: Store, source: any OutboxInboxSource, configuration: OutboxInboxConfiguration, logger: Logger, handler: Store.Handler) {
        self.store = store
        self.source = source
        self.configuration = configuration
        self.handler = handler
        var logger = logger
        logger[metadataKey: "outbox.group"] = .string(configuration.group)
        self.logger = logger
        metrics = InboxMetrics(factory: configuration.metricsFactory ?? MetricsSystem.factory, group: configuration.group)
        let tracer = configuration.tracer ?? InstrumentationSystem.tracer
        self.tracer = tracer is NoOpTracer ? nil : tracer
    }

    /// Consumes until graceful shutdown (finishes running handlers, commits, leaves the group) or
    /// cancellation (stops at once, as a crash would: nothing more is committed, and the next
    /// owner of the partitions reads again what was not, which the inbox then skips).
    ///
    /// - Throws: ``OutboxError`` (`.invalidConfiguration`) for an empty group.
    public func run() async throws {
        guard !configuration.group.isEmpty, configuration.group.utf8.count <= 255 else {
            throw OutboxError(code: .invalidConfiguration, operation: "consume", message: "The consumer group must be 1 to 255 bytes long.")
        }
        await withGracefulShutdownHandler {
            await self.consume()
        } onGracefulShutdown: {
            self.state.withLock { $0.stopping = true }
            self.wakeUp.signal()
        }
        guard !Task.isCancelled else { return }
        await commitFinished()
        await source.close()
    }

    private func consume() async {
        await withDiscardingTaskGroup { handlers in
            handlers.addTask { await self.pollLoop() }
            var lastCommit = ContinuousClock.now
            while !Task.isCancelled {
                let generation = wakeUp.generation
                let now = ContinuousClock.now
                let batchSize = tracer == nil ? configuration.maximumBatchSize : 1
                let (stopping, batches, nextDue) = state.withLock { state -> (Bool, [[OutboxInboxMessage]], ContinuousClock.Instant?) in
                    guard !state.stopping else { return (true, [], nil) }
                    let free = configuration.maximumConcurrentHandlers - state.runningTasks
                    let messages = free > 0 ? state.queue.start(limit: free * batchSize, now: now) : []
                    let batches = stride(from: 0, to: messages.count, by: batchSize).map { Array(messages[$0..<min($0 + batchSize, messages.count)]) }
                    state.running += messages.count
                    state.runningTasks += batches.count
                    metrics.running.record(state.running)
                    metrics.buffered.record(state.queue.count)
                    return (false, batches, state.queue.nextDue)
                }
                if stopping { break }
                for batch in batches {
                    handlers.addTask { await self.handle(batch) }
                }
                if now - lastCommit >= configuration.commitInterval {
                    lastCommit = now
                    await commitFinished()
                }
                let untilDue = nextDue.map { max(.milliseconds(1), $0 - .now) } ?? configuration.commitInterval
                await wakeUp.wait(since: generation, timeout: min(untilDue, configuration.commitInterval))
            }
            await waitForHandlers(in: nil)
            handlers.cancelAll()
        }
    }

    /// Reads from the source into the buffer, pausing while the buffer is full; handles revocations.
    private func pollLoop() async {
        var failures = 0
        while !Task.isCancelled {
            let generation = wakeUp.generation
            let (stopping, buffered) = state.withLock { ($0.stopping, $0.queue.count) }
            if stopping { return }
            guard buffered < configuration.maximumBufferedMessages else {
                await wakeUp.wait(since: generation, timeout: configuration.pollTimeout)
                continue
            }
            do {
                let poll = try await source.poll(timeout: configuration.pollTimeout)
                failures = 0
                if !poll.revoked.isEmpty { await handOver(poll.revoked) }
                if !poll.messages.isEmpty {
                    state.withLock { state in
                        for message in poll.messages {
                            state.offsets.received(message.partition, offset: message.offset)
                            state.queue.add(message)
                        }
                    }
                    wakeUp.signal()
                }
            } catch {
                if Task.isCancelled { return }
                failures += 1
                logger.warning("Outbox inbox could not read from the broker; retrying", metadata: ["outbox.error": "\(error)"])
                await wakeUp.wait(since: generation, timeout: .milliseconds(min(5_000, 100 << min(failures, 6))))
            }
        }
    }

    /// Handles a batch in one store transaction; a batch whose handler failed is handled again
    /// one message at a time, so the failure is counted against its own message.
    private func handle(_ batch: [OutboxInboxMessage]) async {
        defer {
            state.withLock { $0.runningTasks -= 1 }
            wakeUp.signal()
        }
        guard batch.count > 1 else {
            if let message = batch.first { await handle(message) }
            return
        }
        let started = ContinuousClock.now
        do {
            let (store, handler, group) = (self.store, self.handler, configuration.group)
            let outcomes = try await OutboxStoreCallTimeout.run("handle", timeout: configuration.storeCallTimeout) {
                try await store.handleBatch(batch, group: group, now: Date(), handler: handler)
            }
            let each = (ContinuousClock.now - started) / batch.count
            for (message, outcome) in zip(batch, outcomes) {
                metrics.handlerDuration.record(duration: each)
                (outcome == .handled ? metrics.handled : metrics.duplicates).increment()
                finish(message)
            }
        } catch let error as OutboxError where error.code == .storeUnavailable {
            metrics.storeUnavailable.increment()
            logger.warning("Outbox inbox could not reach its store; the messages wait", metadata: ["outbox.error": "\(error)"])
            for message in batch { release(message, until: .now + .seconds(1)) }
        } catch {
            if Task.isCancelled {
                for message in batch { release(message, until: .now) }
                return
            }
            for message in batch { await handle(message) }
        }
    }

    private func handle(_ message: OutboxInboxMessage) async {
        defer { wakeUp.signal() }
        let outcome: Result<OutboxInboxOutcome, any Error>
        let started = ContinuousClock.now
        let span = startSpan(for: message)
        do {
            let (store, handler, group, timeout) = (self.store, self.handler, configuration.group, configuration.storeCallTimeout)
            // A hung call (a connection the server dropped) becomes a store outage: the message
            // waits and is tried again; the unique inbox record keeps a late commit from counting twice.
            let handle = {
                try await OutboxStoreCallTimeout.run("handle", timeout: timeout) {
                    try await store.handleOnce(message, group: group, now: Date(), handler: handler)
                }
            }
            // The handler runs in the span's context: its own spans are children of the processing.
            if let span {
                outcome = .success(try await ServiceContext.withValue(span.context) { try await handle() })
            } else {
                outcome = .success(try await handle())
            }
        } catch {
            outcome = .failure(error)
        }
        metrics.handlerDuration.record(duration: ContinuousClock.now - started)
        if let span {
            switch outcome {
            case .success(let result):
                if result == .duplicate { span.attributes["outbox.inbox.duplicate"] = true }
                span.setStatus(SpanStatus(code: .ok))
            case .failure(let error):
                span.setStatus(SpanStatus(code: .error, message: OutboxFailureReason.clean("\(error)")))
            }
            span.end()
        }
        switch outcome {
        case .success(let result):
            (result == .handled ? metrics.handled : metrics.duplicates).increment()
            finish(message)
        case .failure(let error as OutboxError) where error.code == .storeUnavailable:
            metrics.storeUnavailable.increment()
            if Task.isCancelled { return release(message, until: .now) }
            logger.warning("Outbox inbox could not reach its store; the message waits", metadata: ["outbox.error": "\(error)"])
            release(message, until: .now + .seconds(1))
        case .failure(let error):
            if Task.isCancelled { return release(message, until: .now) }
            metrics.failed.increment()
            let attempts = state.withLock { state -> Int in
                let attempts = (state.attempts[message.partition]?[message.offset] ?? 0) + 1
                state.attempts[message.partition, default: [:]][message.offset] = attempts
                return attempts
            }
            let reason = OutboxFailureReason.clean("\(error)")
            if attempts >= configuration.retryPolicy.maximumAttempts {
                do {
                    let (store, group) = (self.store, configuration.group)
                    try await OutboxStoreCallTimeout.run("dead-letter", timeout: configuration.storeCallTimeout) {
                        try await store.deadLetter(message, group: group, reason: reason, attempts: attempts, now: Date())
                    }
                    metrics.deadLettered.increment()
                    logger.warning("Outbox inbox dead-lettered a message", metadata: [
                        "outbox.topic": "\(message.partition)", "outbox.offset": "\(message.offset)", "outbox.attempts": "\(attempts)",
                        "outbox.error": "\(reason)",
                    ])
                    finish(message)
                } catch {
                    logger.warning("Outbox inbox could not dead-letter a message; retrying", metadata: ["outbox.error": "\(error)"])
                    release(message, until: .now + .seconds(1))
                }
            } else {
                logger.debug("Outbox inbox handler failed; retrying later", metadata: ["outbox.attempts": "\(attempts)", "outbox.error": "\(reason)"])
                release(message, until: .now + configuration.retryPolicy.backoff(afterAttempts: attempts))
            }
        }
    }

    /// A consumer span, child of the context the message carries (the relay's publish span), with
    /// OpenTelemetry's messaging attributes; `nil` without a tracer.
    private func startSpan(for message: OutboxInboxMessage) -> (any Span)? {
        guard let tracer else { return nil }
        var parent = ServiceContext.topLevel
        tracer.extract(message.headers, into: &parent, using: OutboxHeaderExtractor())
        let topic = message.partition.topic
        let span = tracer.startSpan("process \(topic)", context: parent, ofKind: .consumer)
        span.attributes["messaging.system"] = source.messagingSystem
        span.attributes["messaging.operation.type"] = "process"
        span.attributes["messaging.operation.name"] = "process"
        span.attributes["messaging.destination.name"] = topic
        span.attributes["messaging.destination.partition.id"] = "\(message.partition.partition)"
        span.attributes["messaging.consumer.group.name"] = configuration.group
        span.attributes["messaging.message.body.size"] = message.payload.count
        if let id = message.outboxID { span.attributes["messaging.message.id"] = id.uuidString.lowercased() }
        return span
    }

    private func finish(_ message: OutboxInboxMessage) {
        state.withLock { state in
            state.running -= 1
            state.queue.finish(message)
            state.offsets.finished(message.partition, offset: message.offset)
            state.attempts[message.partition]?[message.offset] = nil
        }
    }

    private func release(_ message: OutboxInboxMessage, until: ContinuousClock.Instant) {
        state.withLock { state in
            state.running -= 1
            state.queue.hold(message, until: until)
        }
    }

    /// A rebalance took partitions away: nothing new starts on them, running handlers finish
    /// (within the grace period), finished offsets are committed, then the source lets them go.
    private func handOver(_ revoked: Set<OutboxInboxPartition>) async {
        state.withLock { $0.queue.drop(revoked) }
        await waitForHandlers(in: revoked)
        await commitFinished()
        state.withLock { state in
            state.offsets.forget(revoked)
            for partition in revoked { state.attempts[partition] = nil }
        }
        await source.releaseRevoked(revoked)
    }

    private func waitForHandlers(in partitions: Set<OutboxInboxPartition>?) async {
        let deadline = ContinuousClock.now + configuration.shutdownGracePeriod
        while !Task.isCancelled, ContinuousClock.now < deadline {
            let generation = wakeUp.generation
            let busy = state.withLock { state in partitions.map { state.queue.isRunning(in: $0) } ?? (state.running > 0) }
            if !busy { return }
            await wakeUp.wait(since: generation, timeout: .milliseconds(100))
        }
    }

    private func commitFinished() async {
        let positions = state.withLock { $0.offsets.positionsToCommit() }
        guard !positions.isEmpty else { return }
        do {
            try await source.commit(positions)
            state.withLock { $0.commitFailures = 0 }
        } catch {
            // Not lost: a later commit covers these positions, and a consumer that dies first
            // re-reads messages the inbox then skips. A rebalance fails a commit or two; only a
            // run of failures is worth a warning.
            let failures = state.withLock { state -> Int in
                for partition in positions.keys { state.offsets.forgetCommitted(partition) }
                state.commitFailures += 1
                return state.commitFailures
            }
            logger.log(level: failures >= 3 ? .warning : .debug, "Outbox inbox could not commit offsets; a later commit covers them",
                       metadata: ["outbox.error": "\(error)", "outbox.failures": "\(failures)"])
        }
    }
}
