public import Outbox
import Synchronization

/// A publisher that delivers everything into memory, in the order it was published.
///
/// It plays the broker and the consumer in tests: ``deliveries`` is what a consumer would read.
public final class RecordingPublisher: OutboxPublisher, Sendable {
    private let log = Mutex<[OutboxRecord]>([])

    /// Creates an empty recorder.
    public init() {}

    public func publish(_ records: [OutboxRecord]) async throws -> [OutboxPublishOutcome] {
        try Task.checkCancellation()
        record(records)
        return Array(repeating: .delivered, count: records.count)
    }

    /// Appends delivered records to the log, as the broker would.
    public func record(_ records: some Sequence<OutboxRecord>) {
        log.withLock { $0.append(contentsOf: records) }
    }

    /// Everything delivered so far, in delivery order, duplicates included.
    public var deliveries: [OutboxRecord] { log.withLock { $0 } }

    /// How many deliveries so far, duplicates included.
    public var deliveryCount: Int { log.withLock { $0.count } }
}
