import Foundation

/// The consumer's schedule: messages of one key (within a partition) are handled one at a time in
/// offset order; different keys run in parallel. A failing message holds back its own key until
/// its retry is due, and no other (I4).
///
/// Lanes (keys) that may start wait in a heap ordered by their first message's arrival, so the
/// oldest waiting work starts first and every operation costs a logarithm of the lanes, not a
/// pass over all of them: the consumer calls ``start(limit:now:)`` and ``finish(_:)`` for every
/// message, under its lock.
package struct OutboxInboxKeyQueue: Sendable {
    /// What orders messages: the key within its partition. A keyless message is a key of its own.
    package struct Lane: Sendable, Hashable {
        var partition: OutboxInboxPartition
        var key: String?
        var offset: Int64?
    }

    /// A waiting message and when it arrived (a count, not a time).
    private struct Entry: Sendable {
        var arrival: Int
        var message: OutboxInboxMessage
    }

    /// A lane that may start, ordered by its first message's arrival.
    private struct ReadyLane: Sendable {
        var arrival: Int
        var lane: Lane
    }

    private var waiting: [Lane: [Entry]] = [:]
    /// Lanes with waiting messages that are neither running nor held: a binary min-heap on arrival.
    private var ready: [ReadyLane] = []
    private var running: Set<Lane> = []
    private var heldUntil: [Lane: ContinuousClock.Instant] = [:]
    private var arrivals = 0

    /// Messages waiting or running.
    package private(set) var count = 0

    package init() {}

    package static func lane(of message: OutboxInboxMessage) -> Lane {
        Lane(partition: message.partition, key: message.key, offset: message.key == nil ? message.offset : nil)
    }

    package mutating func add(_ message: OutboxInboxMessage) {
        let lane = Self.lane(of: message)
        arrivals += 1
        count += 1
        let isNew = waiting[lane] == nil
        waiting[lane, default: []].append(Entry(arrival: arrivals, message: message))
        // A lane already waiting, running or held is in the right place; a new one may start.
        if isNew { push(ReadyLane(arrival: arrivals, lane: lane)) }
    }

    /// Up to `limit` messages that may start now, oldest first: the first of each lane that is
    /// neither running nor held. They count as running until ``finish(_:)`` or ``hold(_:until:)``.
    package mutating func start(limit: Int, now: ContinuousClock.Instant) -> [OutboxInboxMessage] {
        if !heldUntil.isEmpty {
            for (lane, until) in heldUntil where until <= now {
                heldUntil[lane] = nil
                if let first = waiting[lane]?.first { push(ReadyLane(arrival: first.arrival, lane: lane)) }
            }
        }
        var started: [OutboxInboxMessage] = []
        while started.count < limit, let next = pop() {
            // A lane is in the heap once, but a second entry would be harmless: never two of a lane at once.
            guard !running.contains(next.lane), heldUntil[next.lane] == nil, let first = waiting[next.lane]?.first else { continue }
            running.insert(next.lane)
            started.append(first.message)
        }
        return started
    }

    /// The message is done (handled, duplicate or dead-lettered): its lane moves on.
    package mutating func finish(_ message: OutboxInboxMessage) {
        let lane = Self.lane(of: message)
        running.remove(lane)
        // In place: a copy of the lane (`var queue = waiting[lane]`) made every finish cost the
        // whole lane's length in retains.
        if waiting[lane]?.first?.message.offset == message.offset {
            waiting[lane]?.removeFirst()
            count -= 1
        }
        if let next = waiting[lane]?.first {
            push(ReadyLane(arrival: next.arrival, lane: lane))
        } else {
            waiting[lane] = nil
        }
    }

    /// The message failed and is retried at `until`; its lane waits, the others do not.
    package mutating func hold(_ message: OutboxInboxMessage, until: ContinuousClock.Instant) {
        let lane = Self.lane(of: message)
        running.remove(lane)
        heldUntil[lane] = until
    }

    /// When the earliest held lane is due, if any lane is held.
    package var nextDue: ContinuousClock.Instant? { heldUntil.values.min() }

    /// Drops the waiting (not running) messages of revoked partitions; they are read again by the
    /// partitions' next owner from the committed position.
    package mutating func drop(_ revoked: Set<OutboxInboxPartition>) {
        for (lane, entries) in waiting where revoked.contains(lane.partition) {
            if running.contains(lane) {
                // The running message finishes; nothing after it starts.
                waiting[lane] = Array(entries.prefix(1))
                count -= entries.count - 1
            } else {
                waiting[lane] = nil
                heldUntil[lane] = nil
                count -= entries.count
            }
        }
        let kept = ready.filter { !revoked.contains($0.lane.partition) }
        ready = []
        for lane in kept { push(lane) }
    }

    /// Whether a message of these partitions is running.
    package func isRunning(in partitions: Set<OutboxInboxPartition>) -> Bool {
        running.contains { partitions.contains($0.partition) }
    }

    // MARK: - The heap

    private mutating func push(_ lane: ReadyLane) {
        ready.append(lane)
        var child = ready.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard ready[child].arrival < ready[parent].arrival else { break }
            ready.swapAt(child, parent)
            child = parent
        }
    }

    private mutating func pop() -> ReadyLane? {
        guard !ready.isEmpty else { return nil }
        ready.swapAt(0, ready.count - 1)
        let first = ready.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1, right = left + 1
            var smallest = parent
            if left < ready.count && ready[left].arrival < ready[smallest].arrival { smallest = left }
            if right < ready.count && ready[right].arrival < ready[smallest].arrival { smallest = right }
            if smallest == parent { break }
            ready.swapAt(parent, smallest)
            parent = smallest
        }
        return first
    }
}
