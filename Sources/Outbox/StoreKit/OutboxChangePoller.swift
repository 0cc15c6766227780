import Synchronization

/// Adaptive polling for stores that cannot notify: wakes a waiting relay when a cheap probe of
/// the store (the highest sequence, a counter) changes.
///
/// Right after activity it probes every `minimumInterval`; each quiet probe doubles the interval
/// up to `maximumInterval`, so an idle relay costs the store about one cheap query per
/// `maximumInterval` while a busy one hears of commits within milliseconds.
public final class OutboxChangePoller: Sendable {
    private struct State {
        var lastValue: Int64?
        var interval: Duration
    }

    private let minimumInterval: Duration
    private let maximumInterval: Duration
    private let state: Mutex<State>
    private let probes = Atomic<Int>(0)

    /// Probes made so far (for `outbox bench`'s idle query count).
    public var probeCount: Int { probes.load(ordering: .relaxed) }
    /// Remembers in-process commit signals between two waits, for stores that also signal.
    public let wakeUpCursor = OutboxSignalCursor()

    /// Creates a poller.
    public init(minimumInterval: Duration, maximumInterval: Duration) {
        self.minimumInterval = minimumInterval
        self.maximumInterval = max(minimumInterval, maximumInterval)
        state = Mutex(State(lastValue: nil, interval: minimumInterval))
    }

    /// Something was just enqueued: more may follow, so probe fast again.
    public func noteActivity() {
        state.withLock { $0.interval = minimumInterval }
    }

    /// Returns when `probe`'s value changed since the last probe, after `timeout`, or on
    /// cancellation. A probe that fails (`nil`) counts as "no change".
    public func waitForChange(timeout: Duration, probe: @Sendable () async -> Int64?) async {
        let deadline = ContinuousClock.now + timeout
        while !Task.isCancelled {
            probes.wrappingAdd(1, ordering: .relaxed)
            let current = await probe()
            let changed = state.withLock { state -> Bool in
                guard let current else { return false }
                defer { state.lastValue = current }
                if let last = state.lastValue, last != current {
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
