/// Which offsets of each partition a consumer may commit: up to, not including, the lowest offset
/// not yet finished (handled, skipped as a duplicate, or dead-lettered). Handlers of different keys
/// finish out of order; the committed position never passes a message still in work, so a consumer
/// that dies re-reads everything it had not finished (I3).
package struct OutboxInboxOffsets: Sendable {
    private struct Partition: Sendable {
        /// Offsets received and not finished, in offset order.
        var open: Set<Int64> = []
        /// One past the highest offset received.
        var next: Int64?
        /// What was last committed (or handed out to commit).
        var committed: Int64?

        mutating func received(_ offset: Int64) {
            open.insert(offset)
            next = max(next ?? offset + 1, offset + 1)
        }
    }

    private var partitions: [OutboxInboxPartition: Partition] = [:]

    package init() {}

    /// Records a received message (offsets of a partition arrive in increasing order).
    package mutating func received(_ partition: OutboxInboxPartition, offset: Int64) {
        // In place: a copy of the partition's state copied its whole set of open offsets for
        // every message received.
        partitions[partition, default: Partition()].received(offset)
    }

    /// Records a finished message.
    package mutating func finished(_ partition: OutboxInboxPartition, offset: Int64) {
        partitions[partition]?.open.remove(offset)
    }

    /// The position to commit for each partition whose position moved since the last call: the
    /// lowest open offset, or one past the highest received when nothing is open.
    package mutating func positionsToCommit() -> [OutboxInboxPartition: Int64] {
        var positions: [OutboxInboxPartition: Int64] = [:]
        for (partition, state) in partitions {
            guard let next = state.next else { continue }
            let position = state.open.min() ?? next
            if state.committed != position {
                positions[partition] = position
                partitions[partition]?.committed = position
            }
        }
        return positions
    }

    /// Makes the next ``positionsToCommit()`` answer this partition again (its commit failed).
    package mutating func forgetCommitted(_ partition: OutboxInboxPartition) {
        partitions[partition]?.committed = nil
    }

    /// Forgets partitions the consumer no longer owns (after their final commit).
    package mutating func forget(_ revoked: Set<OutboxInboxPartition>) {
        for partition in revoked { partitions[partition] = nil }
    }

    /// Messages received and not finished, in all partitions or in `only`.
    package func openCount(in only: Set<OutboxInboxPartition>? = nil) -> Int {
        partitions.reduce(0) { sum, entry in (only.map { $0.contains(entry.key) } ?? true) ? sum + entry.value.open.count : sum }
    }
}
