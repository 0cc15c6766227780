import Outbox
import Synchronization

/// Adaptive polling for commits made by other processes.
///
/// MySQL has no LISTEN/NOTIFY. The poller reads the highest sequence (an index lookup) and wakes
/// the relay when it moved. Right after activity it checks every `minimumInterval`; each quiet
/// check doubles the interval up to `maximumInterval`, so an idle relay costs the server about
/// one cheap query per `maximumInterval` while a busy one hears of commits within milliseconds.
final class MySQLChangePoller: Sendable {
    private struct State {
        var lastSequence: Int64?
        var interval: Duration
    }

    private let query: String
    private let minimumInterval: Duration
    private let maximumInterval: Duration
    private let state: Mutex<State>
    /// Remembers in-process commit signals between two waits.
    let wakeUpCursor = OutboxSignalCursor()

    init(query: String, minimumInterval: Duration, maximumInterval: Duration) {
        self.query = query
        self.minimumInterval = minimumInterval
        self.maximumInterval = max(minimumInterval, maximumInterval)
        state = Mutex(State(lastSequence: nil, interval: minimumInterval))
    }

    /// Something was just enqueued in this process: more may follow, so poll fast again.
    func noteActivity() {
        state.withLock { $0.interval = minimumInterval }
    }

    /// Returns when the highest sequence changed, after `timeout`, or on cancellation.
    func waitForChange(pool: MySQLConnectionPool, timeout: Duration) async {
        let deadline = ContinuousClock.now + timeout
        while !Task.isCancelled {
            let current = try? await pool.query(query).rows.first?[0].int64
            let changed = state.withLock { state -> Bool in
                guard let current else { return false }
                defer { state.lastSequence = current }
                if let last = state.lastSequence, last != current {
                    state.interval = minimumInterval
                    return true
                }
                return false
            }
            if changed { return }
            let pause = state.withLock { state -> Duration in
                defer { state.interval = min(maximumInterval, state.interval * 2) }
                return state.interval
            }
            let remaining = deadline - .now
            if remaining <= .zero { return }
            try? await Task.sleep(for: min(pause, remaining))
            if ContinuousClock.now >= deadline { return }
        }
    }
}
