import Metrics

/// The inbox consumer's metrics, named like the relay's. Dimensions: the consumer group only
/// (bounded: a process runs a few groups), never topics, keys or ids.
struct InboxMetrics: Sendable {
    let handled: Counter
    let duplicates: Counter
    let failed: Counter
    let deadLettered: Counter
    let storeUnavailable: Counter
    let handlerDuration: Metrics.Timer
    let running: Gauge
    let buffered: Gauge

    init(factory: any MetricsFactory, group: String) {
        let dimensions = [("group", group)]
        handled = Counter(label: "outbox_inbox_messages_handled_total", dimensions: dimensions, factory: factory)
        duplicates = Counter(label: "outbox_inbox_duplicates_skipped_total", dimensions: dimensions, factory: factory)
        failed = Counter(label: "outbox_inbox_handler_failures_total", dimensions: dimensions, factory: factory)
        deadLettered = Counter(label: "outbox_inbox_messages_dead_lettered_total", dimensions: dimensions, factory: factory)
        storeUnavailable = Counter(label: "outbox_inbox_store_unavailable_total", dimensions: dimensions, factory: factory)
        handlerDuration = Metrics.Timer(label: "outbox_inbox_handle_duration_seconds", dimensions: dimensions, factory: factory)
        running = Gauge(label: "outbox_inbox_handlers_running", dimensions: dimensions, factory: factory)
        buffered = Gauge(label: "outbox_inbox_messages_buffered", dimensions: dimensions, factory: factory)
    }
}
