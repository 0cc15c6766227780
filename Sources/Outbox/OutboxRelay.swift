import Foundation
public import Logging
import Metrics
public import ServiceLifecycle
import Synchronization

/// Publishes every committed outbox message to the broker, in per-key order, and records the outcome.
///
/// Run it as a `Service` in a `ServiceGroup` (or call ``run()`` yourself). Any number of relays can
/// share one store: they lease the store's virtual partitions (heartbeat, expiry, fencing), so each
/// message has one publisher at a time and a crashed relay's partitions move to the others.
///
/// The cycle: wake-up (store notification or poll timer) → claim a batch of due messages from the
/// partitions this relay holds → publish it → acknowledge (delivered rows deleted or marked,
/// failures rescheduled with backoff and jitter, or dead-lettered after the retry policy's limit).
/// Up to `maximumBatchesInFlight` batches overlap, so the next claim runs while the broker acks.
///
/// Graceful shutdown stops claiming, waits for batches in flight (up to `shutdownGracePeriod`),
/// releases the leases and returns. Cancellation abandons at once, as a crash would: nothing is
/// acknowledged that the broker did not confirm, and the leases lapse for others to take.
public final class OutboxRelay: Service, Sendable {
    private let store: any OutboxStore
    private let publisher: any OutboxPublisher
    private let configuration: OutboxRelayConfiguration
    private let logger: Logger
    private let metrics: RelayMetrics
    private let tracing: RelayTracing
    private let ledger = Mutex(RelayLedger())
    private let wakeUp = OutboxSignal()
    /// Raised when a heartbeat should come early: a surplus partition drained, ready to hand over.
    private let heartbeatNow = OutboxSignal()
    private let publisherPause = Mutex<(until: ContinuousClock.Instant?, failures: Int)>((nil, 0))
    /// This relay object's run, told apart from another relay started with the same id.
    private let instanceID = UUID().uuidString
    /// Whether the store holds this run's registration (false while another live relay holds the id).
    private let holdsRegistration = Atomic<Bool>(false)
    /// Messages this run recorded as delivered, reported with each heartbeat (throughput per relay).
    private let publishedCount = Atomic<Int>(0)

    /// Creates a relay.
    ///
    /// - Parameters:
    ///   - store: where committed messages wait.
    ///   - publisher: the broker.
    ///   - configuration: batch sizes, leases, retries; see ``OutboxRelayConfiguration``.
    ///   - logger: the relay logs at `info` and below, with `outbox.` metadata, never payloads.
    public init(
        store: any OutboxStore,
        publisher: any OutboxPublisher,
        configuration: OutboxRelayConfiguration = .init(),
        logger: Logger
    ) {
        self.store = store
        self.publisher = publisher
        self.configuration = configuration
        var logger = logger
        logger[metadataKey: "outbox.relay_id"] = .string(configuration.relayID)
        self.logger = logger
        self.metrics = RelayMetrics(factory: configuration.metricsFactory ?? MetricsSystem.factory)
        self.tracing = RelayTracing(tracer: configuration.tracer, system: publisher.messagingSystem)
    }

    /// The relay's id in the store.
    public var relayID: String { configuration.relayID }

    /// How long one claim or acknowledgement may take before it counts as failed: far above any
    /// healthy call, short enough that a call hung on a dead connection does not stall the relay.
    var storeCallTimeout: Duration { max(configuration.leaseDuration * 3, .seconds(10)) }

    /// Runs until graceful shutdown (returns after releasing its leases) or cancellation (returns
    /// at once, leaving its leases to lapse).
    ///
    /// - Throws: ``OutboxError`` with code `.invalidConfiguration` when the configuration is inconsistent.
    public func run() async throws {
        try configuration.validate()
        logger.info("Outbox relay starting", metadata: ["outbox.batch_size": "\(configuration.batchSize)"])
        await withDiscardingTaskGroup { group in
            group.addTask { await self.heartbeatLoop() }
            group.addTask { await self.storeWakeUpLoop() }
            if metrics.isExported {
                group.addTask { await self.backlogGaugeLoop() }
            }
            if configuration.deliveredRetention != nil {
                group.addTask { await self.cleanupLoop() }
            }
            await withGracefulShutdownHandler {
                await self.claimLoop()
            } onGracefulShutdown: {
                self.ledger.withLock { $0.isStopping = true }
                self.wakeUp.signal()
            }
            group.cancelAll()
        }
        guard !Task.isCancelled else {
            logger.info("Outbox relay cancelled; its leases lapse for other relays to take over")
            return
        }
        // A relay that waited behind another live relay with its id holds nothing to release, and
        // resigning would take that relay's registration and leases away.
        guard holdsRegistration.load(ordering: .acquiring) else {
            logger.info("Outbox relay stopped; it held no partitions")
            return
        }
        do {
            try await store.resign(relayID: configuration.relayID)
            logger.info("Outbox relay stopped and released its partitions")
        } catch {
            logger.warning("Outbox relay stopped but could not release its partitions; they lapse after the lease duration",
                           metadata: ["outbox.error": "\(error)"])
        }
        ledger.withLock { $0.dropLeases() }
    }

    // MARK: - Claiming

    private func claimLoop() async {
        await withDiscardingTaskGroup { batches in
            var storeFailures = 0
            while !Task.isCancelled {
                let generation = wakeUp.generation
                let now = ContinuousClock.now
                let (claimable, stopping, batchesInFlight, inFlight, inFlightKeys, claimStartedAt, bytesInFlight, held) = ledger.withLock {
                    ($0.claimablePartitions(at: now), $0.isStopping, $0.batchesInFlight, $0.sequencesInFlight, $0.inFlightKeys,
                     $0.finishedBatches, $0.bytesInFlight, $0.heldCount)
                }
                if stopping { break }
                if let pausedUntil = publisherPause.withLock({ $0.until }), pausedUntil > now {
                    await wakeUp.wait(since: generation, timeout: pausedUntil - now)
                    continue
                }
                // Messages held behind a batch that was delivered go next, without another claim.
                let readyBatch = ledger.withLock { ledger in
                    ledger.hasReady && ledger.batchesInFlight < configuration.maximumBatchesInFlight
                        ? ledger.takeReady(limit: configuration.batchSize, claimable: Set(ledger.claimablePartitions(at: now))) : []
                }
                if !readyBatch.isEmpty {
                    metrics.inFlight.record(ledger.withLock { $0.messagesInFlight })
                    batches.addTask { await self.process(readyBatch) }
                    continue
                }
                let budget = configuration.maximumBytesInFlight
                // Held messages stop the claims at one batch's worth, so a claim's messages always
                // find room to wait (up to two batches' worth) instead of being thrown away.
                if claimable.isEmpty || batchesInFlight >= configuration.maximumBatchesInFlight || (batchesInFlight > 0 && bytesInFlight >= budget)
                    || held >= configuration.batchSize {
                    await wakeUp.wait(since: generation, timeout: configuration.pollInterval)
                    continue
                }
                // The store leaves out the rows already in flight, so a claim reads each row once
                // even while batches overlap.
                let limit = configuration.batchSize
                // This claim's share of the byte budget: what is left of it, and no more than an
                // even share per batch, so the batches overlap as they do with small messages.
                let maximumBytes = max(1, min(budget - bytesInFlight, budget / configuration.maximumBatchesInFlight))
                let excluding = inFlight.sorted()
                let records: [OutboxRecord]
                do {
                    let store = self.store
                    records = try await metrics.timed(metrics.claimDuration) {
                        try await OutboxStoreCallTimeout.run("claim", timeout: storeCallTimeout) {
                            try await store.claim(partitions: claimable, limit: limit, maximumBytes: maximumBytes, now: Date(), excluding: excluding)
                        }
                    }
                    storeFailures = 0
                } catch {
                    if Task.isCancelled { break }
                    storeFailures += 1
                    logger.warning("Outbox relay could not claim messages; retrying",
                                   metadata: ["outbox.error": "\(error)", "outbox.failures": "\(storeFailures)"])
                    await wakeUp.wait(since: generation, timeout: Self.storeBackoff(failures: storeFailures))
                    continue
                }
                let batch = ledger.withLock {
                    $0.admit(records, limit: configuration.batchSize, claimable: Set($0.claimablePartitions(at: .now)),
                             claimStartedAt: claimStartedAt, keysInFlightAtClaim: inFlightKeys,
                             parkLimit: 2 * configuration.batchSize)
                }
                if !batch.isEmpty {
                    metrics.inFlight.record(ledger.withLock { $0.messagesInFlight })
                    batches.addTask { await self.process(batch) }
                }
                let reachedBytes = records.reduce(0) { $0 + $1.message.payload.count } >= maximumBytes
                if (records.count < limit && !reachedBytes) || batch.isEmpty {
                    // Not a full batch: wait for new messages, a finished batch, or the poll timer.
                    await wakeUp.wait(since: generation, timeout: configuration.pollInterval)
                }
            }
            await waitForBatches(batchesInFlight: { self.ledger.withLock { $0.batchesInFlight } })
            batches.cancelAll()
        }
    }

    /// On graceful shutdown, lets batches in flight finish for up to the grace period.
    private func waitForBatches(batchesInFlight: @Sendable () -> Int) async {
        let deadline = ContinuousClock.now + configuration.shutdownGracePeriod
        while batchesInFlight() > 0 && !Task.isCancelled {
            let now = ContinuousClock.now
            if now >= deadline {
                logger.warning("Outbox relay abandons batches still in flight after the shutdown grace period; they stay pending")
                return
            }
            let generation = wakeUp.generation
            if batchesInFlight() == 0 { return }
            await wakeUp.wait(since: generation, timeout: min(deadline - now, .milliseconds(100)))
        }
    }

    // MARK: - Publishing and acknowledging

    private func process(_ batch: [OutboxRecord]) async {
        // What the broker took and the store recorded: later messages of these keys held behind
        // them may go. Anything else (an error, a fenced or unwritten outcome) lets them go.
        var delivered: Set<Int64> = []
        defer {
            let (handOver, inFlight) = ledger.withLock { ledger in
                ledger.finish(batch, delivered: delivered)
                return (!ledger.drainedSurplus.isEmpty, ledger.messagesInFlight)
            }
            metrics.inFlight.record(inFlight)
            wakeUp.signal()
            if handOver { heartbeatNow.signal() }
        }
        let started = ContinuousClock.now
        // A damaged row is never handed to the publisher: it is dead-lettered below, and the rest
        // of the batch flows.
        // With tracing on, each message travels with its publish span's context instead of the enqueue's.
        let (publishable, spans) = tracing.start(batch.filter { $0.damage == nil })
        var outcomes: [OutboxPublishOutcome]
        do {
            outcomes = publishable.isEmpty ? [] : try await publisher.publish(publishable)
        } catch {
            tracing.end(spans, outcomes: nil, error: error)
            if Task.isCancelled || error is CancellationError { return }
            pausePublishing(after: error)
            return
        }
        tracing.end(spans, outcomes: outcomes)
        if Task.isCancelled { return }
        guard outcomes.count == publishable.count else {
            logger.error("Outbox publisher answered with the wrong number of outcomes; the batch stays pending",
                         metadata: ["outbox.expected": "\(batch.count)", "outbox.received": "\(outcomes.count)"])
            pausePublishing(after: OutboxError(code: .publisherUnavailable, operation: "publish", message: "wrong outcome count"))
            return
        }
        // Messages that met a broker outage stay pending as they are (no attempt counted); the
        // relay pauses as if the whole batch had found the broker unreachable.
        if let unavailable = outcomes.first(where: \.isUnavailable) {
            pausePublishing(after: OutboxError(code: .publisherUnavailable, operation: "publish", message: unavailable.description))
        } else {
            publisherPause.withLock { $0 = (nil, 0) }
        }
        if publishable.count < batch.count {
            var merged = outcomes.makeIterator()
            outcomes = batch.map { record in record.damage.map { .failed($0, isRetriable: false) } ?? merged.next()! }
        }
        let now = Date()
        let acknowledgement = makeAcknowledgement(batch: batch, outcomes: outcomes, now: now)
        if await write(acknowledgement) {
            delivered = Set(acknowledgement.delivered.map(\.sequence))
        }
        metrics.batchDuration.record(duration: ContinuousClock.now - started)
        for (record, outcome) in zip(batch, outcomes) where outcome.isDelivered {
            let latency = now.timeIntervalSince(record.message.createdAt)
            metrics.commitToAck.recordNanoseconds(Int64(max(0, latency) * 1e9))
        }
    }

    private func makeAcknowledgement(batch: [OutboxRecord], outcomes: [OutboxPublishOutcome], now: Date) -> OutboxAcknowledgement {
        var acknowledgement = OutboxAcknowledgement(
            relayID: configuration.relayID, retainDelivered: configuration.deliveredRetention != nil, now: now)
        let policy = configuration.retryPolicy
        for (record, outcome) in zip(batch, outcomes) {
            let reference = OutboxMessageReference(sequence: record.sequence, partition: record.partition)
            if outcome.isDelivered {
                acknowledgement.delivered.append(reference)
                continue
            }
            // Skipped and unavailable messages are not written: they stay pending as they are.
            guard let reason = outcome.failureReason.map(OutboxFailureReason.clean) else { continue }
            let attempts = record.attempts + 1
            (outcome.isRetriable ? metrics.failedRetriable : metrics.failedPermanent).increment()
            if record.damage != nil || policy.shouldDeadLetter(attempts: attempts, isRetriable: outcome.isRetriable) {
                acknowledgement.deadLetters.append(.init(sequence: record.sequence, partition: record.partition, error: reason))
                logger.warning("Outbox message dead-lettered", metadata: [
                    "outbox.message_id": "\(record.message.id)", "outbox.topic": "\(record.message.topic)",
                    "outbox.attempts": "\(attempts)", "outbox.error": "\(reason)",
                ])
            } else {
                let delay = policy.backoff(afterAttempts: attempts)
                acknowledgement.retries.append(.init(
                    sequence: record.sequence, partition: record.partition,
                    availableAt: now.addingTimeInterval(delay.timeInterval), error: reason))
                logger.debug("Outbox message failed; retrying later", metadata: [
                    "outbox.message_id": "\(record.message.id)", "outbox.attempts": "\(attempts)", "outbox.error": "\(reason)",
                ])
            }
        }
        return acknowledgement
    }

    /// Writes the outcome, retrying while our leases are still valid: giving up early would only
    /// cause duplicates, and after the leases lapse the new owner publishes these messages again.
    /// Returns whether the whole outcome was recorded under leases still ours (nothing fenced).
    private func write(_ acknowledgement: OutboxAcknowledgement) async -> Bool {
        guard !acknowledgement.isEmpty else { return true }
        var failures = 0
        while !Task.isCancelled {
            do {
                let store = self.store
                // Without valid leases another relay may own these partitions now (under our id,
                // where the store cannot fence): deliveries are still worth recording, but a retry
                // or dead letter written now could overrule the new owner. It retries them itself.
                var trimmed = acknowledgement
                if !(ledger.withLock { $0.leaseValidUntil.map { ContinuousClock.now < $0 } ?? false }) {
                    trimmed.retries = []
                    trimmed.deadLetters = []
                    if trimmed.isEmpty { return false }
                }
                let written = trimmed
                let result = try await metrics.timed(metrics.acknowledgeDuration) {
                    try await OutboxStoreCallTimeout.run("acknowledge", timeout: storeCallTimeout) {
                        try await store.acknowledge(written)
                    }
                }
                metrics.published.increment(by: written.delivered.count)
                publishedCount.add(written.delivered.count, ordering: .relaxed)
                metrics.deadLettered.increment(by: written.deadLetters.count)
                if result.fenced > 0 {
                    metrics.fenced.increment(by: result.fenced)
                    logger.warning("Outbox relay lost a partition lease during a batch; another relay publishes those messages again",
                                   metadata: ["outbox.fenced": "\(result.fenced)"])
                }
                return result.fenced == 0 && written.retries.count == acknowledgement.retries.count
                    && written.deadLetters.count == acknowledgement.deadLetters.count
            } catch {
                failures += 1
                let leaseValid = ledger.withLock { $0.leaseValidUntil.map { ContinuousClock.now < $0 } ?? false }
                guard leaseValid else {
                    logger.warning("Outbox relay could not record a batch outcome before its leases lapsed; the messages will be published again",
                                   metadata: ["outbox.error": "\(error)"])
                    return false
                }
                logger.warning("Outbox relay could not record a batch outcome; retrying",
                               metadata: ["outbox.error": "\(error)", "outbox.failures": "\(failures)"])
                try? await Task.sleep(for: Self.storeBackoff(failures: failures))
            }
        }
        return false
    }

    private func pausePublishing(after error: any Error) {
        metrics.publisherUnavailable.increment()
        let pause = publisherPause.withLock { state -> Duration in
            state.failures += 1
            let exponent = min(state.failures - 1, 8)
            let pause = min(configuration.publisherUnavailableBackoff * (1 << exponent), .seconds(30))
            state.until = .now + pause
            return pause
        }
        logger.warning("Outbox publisher is unavailable; the batch stays pending and the relay pauses",
                       metadata: ["outbox.error": "\(error)", "outbox.pause": "\(pause)"])
    }

    private static func storeBackoff(failures: Int) -> Duration {
        min(.milliseconds(50) * (1 << min(failures, 7)), .seconds(5))
    }

    // MARK: - Leases, wake-ups, cleanup

    private func heartbeatLoop() async {
        var waitingForRelayID = false
        var nextInterval = configuration.heartbeatInterval
        while !Task.isCancelled {
            let generation = heartbeatNow.generation
            let started = ContinuousClock.now
            let (releasing, inFlight) = ledger.withLock { ($0.drainedSurplus, $0.messagesInFlight) }
            do {
                let store = self.store
                let heartbeat = OutboxHeartbeat(relayID: configuration.relayID, leaseDuration: configuration.leaseDuration,
                                                releasing: releasing, inFlight: inFlight, now: Date(), instanceID: instanceID,
                                                published: publishedCount.load(ordering: .relaxed))
                // A heartbeat slower than a lease is as good as a failed one.
                let grant = try await metrics.timed(metrics.heartbeatDuration) {
                    try await OutboxStoreCallTimeout.run("heartbeat", timeout: configuration.leaseDuration) {
                        try await store.heartbeat(heartbeat)
                    }
                }
                metrics.partitionsOwned.record(grant.relayIDInUse ? 0 : grant.owned.count)
                metrics.liveRelays.record(grant.liveRelays)
                metrics.partitions.record(grant.partitionCount)
                // Trust the leases a little less long than the store does, so we stop before another relay starts.
                let validUntil = started + configuration.leaseDuration - configuration.heartbeatInterval / 2
                let gained = ledger.withLock { $0.apply(grant, validUntil: validUntil) }
                holdsRegistration.store(!grant.relayIDInUse, ordering: .releasing)
                if grant.relayIDInUse && !waitingForRelayID {
                    waitingForRelayID = true
                    logger.warning("Another live relay uses this relay id; this relay waits, holding nothing, until that relay stops and its registration lapses (one lease duration)")
                } else if !grant.relayIDInUse && waitingForRelayID {
                    waitingForRelayID = false
                    logger.info("Outbox relay holds its relay id now")
                }
                if gained || !releasing.isEmpty {
                    logger.info("Outbox relay partitions changed", metadata: [
                        "outbox.partitions": "\(grant.owned.count)", "outbox.live_relays": "\(grant.liveRelays)",
                    ])
                }
                if gained { wakeUp.signal() }
                // While partitions change hands, beat faster so the hand-over takes milliseconds,
                // not heartbeat intervals: below our fair share we are waiting for released
                // partitions; with surplus, others wait for us.
                let fairShare = grant.partitionCount / max(1, grant.liveRelays)
                let settling = grant.owned.count < fairShare || !grant.surplus.isEmpty
                nextInterval = settling ? configuration.heartbeatInterval / 8 : configuration.heartbeatInterval
            } catch {
                if Task.isCancelled { return }
                logger.warning("Outbox relay heartbeat failed; leases lapse if this persists",
                               metadata: ["outbox.error": "\(error)"])
            }
            await heartbeatNow.wait(since: generation, timeout: nextInterval)
        }
    }

    /// Reads the backlog for the gauges every `backlogGaugeInterval`: bounded indexed reads (see
    /// ``OutboxStore/backlog(now:countLimit:)``), in a loop of their own so that a slow read never
    /// delays a heartbeat.
    private func backlogGaugeLoop() async {
        let store = self.store
        let limit = configuration.backlogCountLimit
        while !Task.isCancelled {
            do {
                let backlog = try await metrics.timed(metrics.backlogDuration) {
                    try await OutboxStoreCallTimeout.run("backlog", timeout: storeCallTimeout) {
                        try await store.backlog(now: Date(), countLimit: limit)
                    }
                }
                metrics.record(backlog)
            } catch {
                if Task.isCancelled { return }
                logger.debug("Outbox relay could not read the backlog for its gauges", metadata: ["outbox.error": "\(error)"])
            }
            try? await Task.sleep(for: configuration.backlogGaugeInterval)
        }
    }

    private func storeWakeUpLoop() async {
        while !Task.isCancelled {
            // A long timeout: the claim loop's own poll is the safety net, and a wait that ends by
            // timeout wakes the claim loop for nothing (an idle relay's queries doubled).
            await store.waitForNewMessages(timeout: configuration.pollInterval * 10)
            if Task.isCancelled { return }
            wakeUp.signal()
        }
    }

    private func cleanupLoop() async {
        guard let retention = configuration.deliveredRetention else { return }
        while !Task.isCancelled {
            try? await Task.sleep(for: configuration.cleanupInterval)
            var removed = 0
            repeat {
                do {
                    removed = try await store.removeDelivered(
                        finishedBefore: Date().addingTimeInterval(-retention.timeInterval), limit: configuration.cleanupBatchSize)
                } catch {
                    logger.warning("Outbox cleanup of delivered messages failed", metadata: ["outbox.error": "\(error)"])
                    removed = 0
                }
            } while removed == configuration.cleanupBatchSize && !Task.isCancelled
        }
    }
}
