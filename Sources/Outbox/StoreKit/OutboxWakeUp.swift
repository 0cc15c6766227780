/// The wait for new messages that every store does the same way: whichever of its paths hears
/// of a commit first (an in-process signal, a change watcher, a poller) ends the wait.
package enum OutboxWakeUp {
    /// Runs every wait at once and returns when the first one returns (or after `timeout`, which
    /// each wait also honours); the others are cancelled.
    package static func first(of waits: [@Sendable () async -> Void]) async {
        guard waits.count > 1 else {
            await waits.first?()
            return
        }
        await withTaskGroup(of: Void.self) { group in
            for wait in waits { group.addTask { await wait() } }
            await group.next()
            group.cancelAll()
        }
    }
}
