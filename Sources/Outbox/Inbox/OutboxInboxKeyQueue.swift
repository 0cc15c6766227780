import Foundation

/// The consumer's schedule: messages of one key (within a partition) are handled one at a time in
/// offset order; different keys run in parallel. A failing message holds back its own key until
/// its retry is due, and no other (I4).
package struct OutboxInboxKeyQueue: Sendable {
    /// What orders messages: the key within its partition. A keyless message is a key of its own.
    package struct Lane: Sendable, Hashable {
        var partition: OutboxInboxPartition
        var key: String?
        var offset: Int64?
    }

    private var waiting: [Lane: [OutboxInboxMessage]] = [:]
    /// Lanes in the order their first message arrived, so older work starts first.
    private var order: [Lane] = []
    private var running: Set<Lane> = []
    private var heldUntil: [Lane: ContinuousClock.Instant] = [:]

    package init() {}

    package static func lane(of message: OutboxInboxMessage) -> Lane {
        Lane(partition: message.partition, key: message.key, offset: message.key == nil ? message.offset : nil)
    }

    /// Messages waiting or running.
    package var count: Int { waiting.values.reduce(0) { $0 + $1.count } }

    package mutating func add(_ message: OutboxInboxMessage) {
        let lane = Self.lane(of: message)
        if waiting[lane] == nil { order.append(lane) }
        waiting[lane, default: []].append(message)
    }

    /// Up to `limit` messages that may start now: the first of each lane that is neither running
    /// nor held. They count as running until ``finish(_:)`` or ``hold(_:until:)``.
    package mutating func start(limit: Int, now: ContinuousClock.Instant) -> [OutboxInboxMessage] {
        var started: [OutboxInboxMessage] = []
        for lane in order where started.count < limit {
            guard !running.contains(lane), let first = waiting[lane]?.first else { continue }
            if let until = heldUntil[lane], until > now { continue }
            heldUntil[lane] = nil
            running.insert(lane)
            started.append(first)
        }
        return started
    }

    /// The message is done (handled, duplicate or dead-lettered): its lane moves on.
    package mutating func finish(_ message: OutboxInboxMessage) {
        let lane = Self.lane(of: message)
        running.remove(lane)
        guard var queue = waiting[lane], queue.first?.offset == message.offset else { return }
        queue.removeFirst()
        if queue.isEmpty {
            waiting[lane] = nil
            order.removeAll { $0 == lane }
        } else {
            waiting[lane] = queue
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
        for lane in order where revoked.contains(lane.partition) {
            if running.contains(lane) {
                // The running message finishes; nothing after it starts.
                waiting[lane] = waiting[lane].map { Array($0.prefix(1)) }
            } else {
                waiting[lane] = nil
                heldUntil[lane] = nil
            }
        }
        order.removeAll { waiting[$0] == nil }
    }

    /// Whether a message of these partitions is running.
    package func isRunning(in partitions: Set<OutboxInboxPartition>) -> Bool {
        running.contains { partitions.contains($0.partition) }
    }
}
