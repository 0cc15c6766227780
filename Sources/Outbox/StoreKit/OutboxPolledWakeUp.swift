/// How a store without a push path across processes hears of new messages: a commit in this
/// process signals at once, and a cheap probe of the store, polled adaptively
/// (``OutboxChangePoller``), catches commits of other processes. MySQL uses both always; MongoDB
/// polls only while its change stream is down.
package final class OutboxPolledWakeUp: Sendable {
    private let commits = OutboxSignal()
    private let poller: OutboxChangePoller

    package init(_ configuration: OutboxStoreConfiguration) {
        poller = OutboxChangePoller(minimumInterval: configuration.minimumPollInterval, maximumInterval: configuration.maximumPollInterval)
    }

    /// Probes made so far (for `outbox bench`'s idle query count).
    package var probeCount: Int { poller.probeCount }

    /// A transaction that enqueued committed in this process: wake the relays here, and poll
    /// fast again (more may follow).
    package func committed() {
        poller.noteActivity()
        commits.signal()
    }

    /// Messages were found or sent back: poll fast again.
    package func noteActivity() { poller.noteActivity() }

    /// Returns at a commit in this process, when `probe` (if any) sees a change, or after `timeout`.
    package func wait(timeout: Duration, probe: (@Sendable () async -> Int64?)?) async {
        var waits: [@Sendable () async -> Void] = [{ await self.poller.wakeUpCursor.wait(on: self.commits, timeout: timeout) }]
        if let probe { waits.append { await self.poller.waitForChange(timeout: timeout, probe: probe) } }
        await OutboxWakeUp.first(of: waits)
    }
}
