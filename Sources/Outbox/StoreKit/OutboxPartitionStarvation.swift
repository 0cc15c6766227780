import Synchronization

/// Which partitions a store's claims keep finding locked by enqueueing transactions.
///
/// Claims only try-lock a partition: an open enqueue transaction holds it back, so a message is
/// never read before an earlier one of its partition commits. Writers whose transactions keep
/// overlapping on one partition would hold it back for as long as the load lasts. A partition
/// found locked for longer than `patience` is starved: the next claim waits for its lock (briefly,
/// behind the transactions open now), and because a waiting exclusive lock queues ahead of later
/// shared ones, new writers let it in. Stores with such a guard (PostgreSQL, MySQL) keep one of
/// these per store object.
package final class OutboxPartitionStarvation: Sendable {
    private let patience: Duration
    private let lockedSince = Mutex<[Int: ContinuousClock.Instant]>([:])

    /// - Parameter patience: how long a partition may be found locked before claims wait for it.
    package init(patience: Duration = .milliseconds(150)) {
        self.patience = patience
    }

    /// The partitions among `wanted` found locked for longer than the patience.
    package func starved(among wanted: [Int], now: ContinuousClock.Instant = .now) -> [Int] {
        lockedSince.withLock { lockedSince in
            wanted.filter { partition in lockedSince[partition].map { now - $0 >= patience } ?? false }
        }
    }

    /// Notes what a claim found: the partitions of `wanted` it could lock (`locked`), and so those
    /// an enqueue transaction held.
    package func record(wanted: [Int], locked clear: Set<Int>, now: ContinuousClock.Instant = .now) {
        lockedSince.withLock { lockedSince in
            for partition in wanted {
                if clear.contains(partition) {
                    lockedSince[partition] = nil
                } else if lockedSince[partition] == nil {
                    lockedSince[partition] = now
                }
            }
        }
    }
}
