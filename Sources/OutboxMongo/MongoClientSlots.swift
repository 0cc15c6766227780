import Synchronization

/// Counts the pooled libmongoc clients that are free, so a task waits for one here, suspended,
/// instead of on a worker thread inside `mongoc_client_pool_pop`.
///
/// A transaction holds its pooled client until it ends, and its commands run on the worker thread
/// that started it. Once more transactions were open than the pool holds, the next one blocked
/// its worker thread in `mongoc_client_pool_pop`, and with it every open transaction whose
/// commands run on that thread: none could finish and give its client back (a deadlock, seen
/// with 150 concurrent transactions and a pool of 100).
final class MongoClientSlots: Sendable {
    private struct State {
        var free: Int
        var waiting: [CheckedContinuation<Void, Never>] = []
    }

    private let state: Mutex<State>

    init(count: Int) {
        state = Mutex(State(free: count))
    }

    /// Takes a slot, waiting for one to be given back when none is free.
    func acquire() async {
        await withCheckedContinuation { continuation in
            let ready = state.withLock { state -> Bool in
                guard state.free > 0 else {
                    state.waiting.append(continuation)
                    return false
                }
                state.free -= 1
                return true
            }
            if ready { continuation.resume() }
        }
    }

    /// Gives a slot back, to the longest waiting task if there is one.
    func release() {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard !state.waiting.isEmpty else {
                state.free += 1
                return nil
            }
            return state.waiting.removeFirst()
        }
        next?.resume()
    }
}
