import Foundation
import Logging
import Outbox
import Synchronization

/// Reads the store's status every `interval` and keeps the last `history` of samples, so the
/// page's throughput chart covers the last minutes and page views cost the store nothing: every
/// request is answered from the latest sample, however many people look.
///
/// Throughput comes from the relays' `published` counts (reported with each heartbeat): the
/// rate over an interval is the sum, over relays seen at both ends, of the count's growth. A
/// relay that restarted reports a smaller count and counts from zero.
final class OutboxAdminSampler: Sendable {
    private struct State {
        var latest: (status: OutboxStatus, at: Date)?
        var publishedByRelay: [String: Int] = [:]
        var points: [AdminOverview.Point] = []
        var error: String?
    }

    private let store: any OutboxStore
    let interval: Duration
    private let history: Duration
    private let logger: Logger
    private let state = Mutex(State())

    init(store: any OutboxStore, interval: Duration, history: Duration = .seconds(15 * 60), logger: Logger) {
        self.store = store
        self.interval = interval
        self.history = history
        self.logger = logger
    }

    /// Samples until cancelled.
    func run() async {
        while !Task.isCancelled {
            await sample()
            try? await Task.sleep(for: interval)
        }
    }

    /// Reads one sample now.
    func sample() async {
        let now = Date()
        do {
            let status = try await store.status(now: now)
            record(status, at: now)
        } catch {
            if Task.isCancelled { return }
            logger.warning("Outbox admin could not read the store's status", metadata: ["outbox.error": "\(error)"])
            state.withLock { $0.error = "\(error)" }
        }
    }

    func record(_ status: OutboxStatus, at now: Date) {
        state.withLock { state in
            if let previous = state.latest {
                let seconds = max(0.001, now.timeIntervalSince(previous.at))
                var grown = 0
                for relay in status.relays {
                    guard let before = state.publishedByRelay[relay.relayID] else { continue }
                    grown += relay.published >= before ? relay.published - before : relay.published
                }
                state.points.append(.init(at: now.timeIntervalSince1970, publishedPerSecond: Double(grown) / seconds,
                                          pending: status.pending, dead: status.dead))
                let oldest = now.timeIntervalSince1970 - history.timeInterval
                state.points.removeAll { $0.at < oldest }
            }
            state.publishedByRelay = Dictionary(status.relays.map { ($0.relayID, $0.published) }, uniquingKeysWith: max)
            state.latest = (status, now)
            state.error = nil
        }
    }

    /// The latest sample as the page's overview, or `nil` before the first one.
    func overview() -> AdminOverview? {
        state.withLock { state in
            state.latest.map { AdminOverview(status: $0.status, sampledAt: $0.at, throughput: state.points, error: state.error) }
        }
    }
}
