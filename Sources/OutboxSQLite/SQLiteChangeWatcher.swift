import GRDB
import Outbox
import Synchronization

/// Notices commits made by other processes: `PRAGMA data_version` changes whenever *another*
/// connection commits. Reading it touches only shared memory, so checking every few milliseconds
/// costs next to nothing.
///
/// It is read on the store's own writer connection, not a connection of its own: then the
/// relay's own heartbeats and acknowledgements (written through that connection) do not count as
/// changes, and an idle relay is not woken to claim after each of its heartbeats. Enqueues in this
/// process through the same writer do not change it either; they wake relays by the in-process
/// commit signal instead.
final class SQLiteChangeWatcher: Sendable {
    private let writer: any DatabaseWriter
    /// The version the last wait returned at: a commit between two waits wakes the next one at once.
    private let lastSeen = Mutex<Int?>(nil)

    /// `nil` for in-memory databases, which no other process can see.
    init?(writer: any DatabaseWriter) {
        let path = writer.path
        guard !path.isEmpty, path != ":memory:", !path.hasPrefix("file::memory:") else { return nil }
        self.writer = writer
    }

    private func dataVersion() async -> Int? {
        try? await writer.writeWithoutTransaction { db in try Int.fetchOne(db, sql: "PRAGMA data_version") }
    }

    /// Returns when another connection commits, after `timeout`, or on cancellation.
    func waitForChange(checkEvery interval: Duration, timeout: Duration) async {
        let deadline = ContinuousClock.now + timeout
        var start = lastSeen.withLock { $0 }
        if start == nil { start = await dataVersion() }
        var current = start
        defer { lastSeen.withLock { [current] in $0 = current } }
        while !Task.isCancelled && ContinuousClock.now < deadline {
            current = await dataVersion()
            if current != start { return }
            try? await Task.sleep(for: min(interval, max(.zero, deadline - .now)))
        }
    }
}
