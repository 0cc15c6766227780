import GRDB
import Outbox
import Synchronization

/// Notices commits made by other processes: `PRAGMA data_version` on a dedicated connection changes
/// whenever another connection commits. Reading it touches only shared memory, so checking every
/// few milliseconds costs next to nothing.
final class SQLiteChangeWatcher: Sendable {
    private let connection: DatabaseQueue
    /// The version the last wait returned at: a commit between two waits wakes the next one at once.
    private let lastSeen = Mutex<Int?>(nil)

    /// `nil` for in-memory databases, which no other process can see.
    init?(path: String, busyTimeout: Duration) {
        guard !path.isEmpty, path != ":memory:", !path.hasPrefix("file::memory:") else { return nil }
        var configuration = Configuration()
        configuration.readonly = true
        configuration.busyMode = .timeout(busyTimeout.timeInterval)
        configuration.label = "outbox.change-watcher"
        guard let connection = try? DatabaseQueue(path: path, configuration: configuration) else { return nil }
        self.connection = connection
    }

    private func dataVersion() async -> Int? {
        try? await connection.writeWithoutTransaction { db in try Int.fetchOne(db, sql: "PRAGMA data_version") }
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
