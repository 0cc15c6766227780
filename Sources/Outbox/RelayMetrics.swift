import Metrics

/// The relay's metrics, created once. Dimensions are bounded: never ids, keys or topics; store
/// calls carry their operation (one of a handful of names).
///
/// Names follow Prometheus's conventions (`_total` counters, `_seconds` durations), since that is
/// where most of them end up; "Metrics" in the README lists them with what each one costs.
struct RelayMetrics: Sendable {
    let published: Counter
    let failedRetriable: Counter
    let failedPermanent: Counter
    let deadLettered: Counter
    let publisherUnavailable: Counter
    let fenced: Counter
    let batchDuration: Metrics.Timer
    let commitToAck: Metrics.Timer
    /// Pending messages, counted up to the backlog count limit.
    let pending: Gauge
    /// Seconds since the first pending message in commit order was created; 0 when none is pending.
    let oldestPendingAge: Gauge
    /// Dead letters, counted up to the backlog count limit.
    let deadLetters: Gauge
    let partitionsOwned: Gauge
    /// The store's number of partitions: with the owned gauge, shows partitions no relay holds.
    let partitions: Gauge
    let liveRelays: Gauge
    /// Messages handed to the publisher and not yet acknowledged in the store.
    let inFlight: Gauge
    let claimDuration: Metrics.Timer
    let acknowledgeDuration: Metrics.Timer
    let heartbeatDuration: Metrics.Timer
    let backlogDuration: Metrics.Timer
    /// Whether anything receives the metrics: without a backend the backlog is not read at all.
    let isExported: Bool

    init(factory: any MetricsFactory) {
        published = Counter(label: "outbox_messages_published_total", factory: factory)
        failedRetriable = Counter(label: "outbox_messages_failed_total", dimensions: [("retriable", "true")], factory: factory)
        failedPermanent = Counter(label: "outbox_messages_failed_total", dimensions: [("retriable", "false")], factory: factory)
        deadLettered = Counter(label: "outbox_messages_dead_lettered_total", factory: factory)
        publisherUnavailable = Counter(label: "outbox_publisher_unavailable_total", factory: factory)
        fenced = Counter(label: "outbox_acknowledgements_fenced_total", factory: factory)
        batchDuration = Metrics.Timer(label: "outbox_batch_duration_seconds", factory: factory)
        commitToAck = Metrics.Timer(label: "outbox_commit_to_ack_seconds", factory: factory)
        pending = Gauge(label: "outbox_pending_messages", factory: factory)
        oldestPendingAge = Gauge(label: "outbox_oldest_pending_age_seconds", factory: factory)
        deadLetters = Gauge(label: "outbox_dead_letters", factory: factory)
        partitionsOwned = Gauge(label: "outbox_partitions_owned", factory: factory)
        liveRelays = Gauge(label: "outbox_live_relays", factory: factory)
        partitions = Gauge(label: "outbox_partitions", factory: factory)
        inFlight = Gauge(label: "outbox_publisher_in_flight_messages", factory: factory)
        func storeCall(_ operation: String) -> Metrics.Timer {
            Metrics.Timer(label: "outbox_store_call_duration_seconds", dimensions: [("operation", operation)], factory: factory)
        }
        claimDuration = storeCall("claim")
        acknowledgeDuration = storeCall("acknowledge")
        heartbeatDuration = storeCall("heartbeat")
        backlogDuration = storeCall("backlog")
        isExported = !(factory is NOOPMetricsHandler)
    }

    /// Runs a store call, recording its duration whether it succeeds or fails.
    func timed<T>(_ timer: Metrics.Timer, _ body: () async throws -> T) async rethrows -> T {
        let started = ContinuousClock.now
        defer { timer.record(duration: ContinuousClock.now - started) }
        return try await body()
    }

    /// Records a backlog reading.
    func record(_ backlog: OutboxBacklog) {
        pending.record(backlog.pending)
        deadLetters.record(backlog.dead)
        oldestPendingAge.record((backlog.oldestPendingAge ?? .zero).timeInterval)
    }
}
