import Metrics

/// The relay's metrics, created once. Dimensions are bounded: never ids, keys or topics.
struct RelayMetrics: Sendable {
    let published: Counter
    let failedRetriable: Counter
    let failedPermanent: Counter
    let deadLettered: Counter
    let publisherUnavailable: Counter
    let fenced: Counter
    let batchDuration: Metrics.Timer
    let commitToAck: Metrics.Timer
    let pending: Gauge

    init(factory: any MetricsFactory) {
        published = Counter(label: "outbox_messages_published_total", factory: factory)
        failedRetriable = Counter(label: "outbox_messages_failed_total", dimensions: [("retriable", "true")], factory: factory)
        failedPermanent = Counter(label: "outbox_messages_failed_total", dimensions: [("retriable", "false")], factory: factory)
        deadLettered = Counter(label: "outbox_messages_dead_lettered_total", factory: factory)
        publisherUnavailable = Counter(label: "outbox_publisher_unavailable_total", factory: factory)
        fenced = Counter(label: "outbox_acknowledgements_fenced_total", factory: factory)
        batchDuration = Metrics.Timer(label: "outbox_batch_duration", factory: factory)
        commitToAck = Metrics.Timer(label: "outbox_commit_to_ack_latency", factory: factory)
        pending = Gauge(label: "outbox_pending_messages", factory: factory)
    }
}
