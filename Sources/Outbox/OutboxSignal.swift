import Synchronization

/// A wake-up signal that any number of tasks can wait on, with a timeout.
///
/// Waiters pass the ``generation`` they saw before checking for work; a signal raised after that
/// moment wakes them even if it came before they started waiting, so no wake-up is lost between
/// "found nothing" and "wait".
public final class OutboxSignal: Sendable {
    private struct State {
        var generation: UInt64 = 0
        var waiters: [UInt64: Waiter] = [:]
        var nextWaiterID: UInt64 = 0
    }

    private let state = Mutex(State())

    /// Creates a signal.
    public init() {}

    /// Counts signals raised so far.
    public var generation: UInt64 { state.withLock { $0.generation } }

    /// Wakes every task waiting now, and every task that will wait with an older generation.
    public func signal() {
        let waiters = state.withLock { state -> [Waiter] in
            state.generation &+= 1
            defer { state.waiters.removeAll() }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns when a signal newer than `generation` is raised, after `timeout`, or on cancellation.
    public func wait(since generation: UInt64, timeout: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.waitForSignal(since: generation) }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
        }
    }

    private func waitForSignal(since generation: UInt64) async {
        let waiter = Waiter()
        let id = state.withLock { state -> UInt64? in
            if state.generation != generation { return nil }
            state.nextWaiterID &+= 1
            state.waiters[state.nextWaiterID] = waiter
            return state.nextWaiterID
        }
        guard let id else { return }
        await withTaskCancellationHandler {
            await waiter.wait()
        } onCancel: {
            _ = self.state.withLock { $0.waiters.removeValue(forKey: id) }
            waiter.resume()
        }
    }
}

/// Remembers which signals a repeated waiter has seen, so that a signal raised between two of its
/// waits (while it was busy) wakes the next wait at once instead of being missed until a timeout.
///
/// Stores use one for `waitForNewMessages(timeout:)`, which the relay calls in a loop.
public final class OutboxSignalCursor: Sendable {
    private let seen = Mutex<UInt64?>(nil)

    /// Creates a cursor that has seen nothing yet (its first wait starts from now).
    public init() {}

    /// Waits for a signal newer than the last one this cursor returned at, or `timeout`.
    public func wait(on signal: OutboxSignal, timeout: Duration) async {
        let since = seen.withLock { $0 } ?? signal.generation
        await signal.wait(since: since, timeout: timeout)
        let now = signal.generation
        seen.withLock { $0 = now }
    }
}

/// One suspended task; resumes exactly once, whether the resume comes before or after the wait.
private final class Waiter: Sendable {
    private enum State {
        case idle
        case waiting(CheckedContinuation<Void, Never>)
        case resumed
    }

    private let state = Mutex(State.idle)

    func wait() async {
        await withCheckedContinuation { continuation in
            let resumeNow = state.withLock { state -> Bool in
                if case .resumed = state { return true }
                state = .waiting(continuation)
                return false
            }
            if resumeNow { continuation.resume() }
        }
    }

    func resume() {
        let continuation = state.withLock { state -> CheckedContinuation<Void, Never>? in
            defer { state = .resumed }
            if case .waiting(let continuation) = state { return continuation }
            return nil
        }
        continuation?.resume()
    }
}
