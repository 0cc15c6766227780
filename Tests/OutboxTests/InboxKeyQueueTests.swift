import Foundation
@testable import Outbox
import Testing

/// The inbox consumer's schedule: one message per key at a time, in offset order.
@Suite struct InboxKeyQueueTests {
    let partition = OutboxInboxPartition(topic: "orders", partition: 0)

    func message(_ offset: Int64, key: String?) -> OutboxInboxMessage {
        OutboxInboxMessage(partition: partition, offset: offset, key: key, payload: [], headers: [])
    }

    @Test func oneMessagePerKeyInOffsetOrderWithACountThatFollows() {
        var queue = OutboxInboxKeyQueue()
        for (offset, key) in [(0, "a"), (1, "b"), (2, "a"), (3, nil), (4, nil)] as [(Int64, String?)] { queue.add(message(offset, key: key)) }
        #expect(queue.count == 5)
        let first = queue.start(limit: 10, now: .now)
        #expect(first.map(\.offset) == [0, 1, 3, 4], "one per key; keyless messages are keys of their own")
        for started in first { queue.finish(started) }
        #expect(queue.count == 1)
        #expect(queue.start(limit: 10, now: .now).map(\.offset) == [2])
    }

    /// A key filled again after it emptied still runs one message at a time, in order, and
    /// nothing is started twice.
    @Test func manyKeysComingAndGoingStayOrderedAndCounted() {
        var queue = OutboxInboxKeyQueue()
        var offset: Int64 = 0
        var handled: [String: [Int64]] = [:]
        for round in 0..<50 {
            for key in 0..<40 {
                queue.add(message(offset, key: "k\((key + round) % 60)"))
                offset += 1
            }
            var started = queue.start(limit: 25, now: .now)
            while !started.isEmpty {
                #expect(Set(started.map(\.key)).count == started.count, "never two messages of one key at once")
                for message in started {
                    handled[message.key!, default: []].append(message.offset)
                    queue.finish(message)
                }
                started = queue.start(limit: 25, now: .now)
            }
            #expect(queue.count == 0)
        }
        #expect(handled.values.reduce(0) { $0 + $1.count } == Int(offset), "every message handled once")
        #expect(handled.values.allSatisfy { $0 == $0.sorted() }, "each key in offset order")
    }

    /// The oldest waiting message starts first, whatever its key: a key whose message finished
    /// takes its place by the age of its next message.
    @Test func theOldestWaitingMessageStartsFirst() {
        var queue = OutboxInboxKeyQueue()
        for (offset, key) in [(0, "a"), (1, "b"), (2, "a"), (3, "c")] as [(Int64, String)] { queue.add(message(offset, key: key)) }
        let first = queue.start(limit: 1, now: .now)
        #expect(first.map(\.offset) == [0])
        queue.finish(first[0])
        #expect(queue.start(limit: 10, now: .now).map(\.offset) == [1, 2, 3])
    }

    /// A held key waits for its retry and holds back nothing else; dropping a revoked partition
    /// keeps only its running message, and the count follows.
    @Test func heldKeysWaitAndRevokedPartitionsAreDropped() {
        var queue = OutboxInboxKeyQueue()
        let other = OutboxInboxPartition(topic: "orders", partition: 1)
        for (offset, key) in [(0, "a"), (1, "a"), (2, "b")] as [(Int64, String)] { queue.add(message(offset, key: key)) }
        let now = ContinuousClock.now
        let started = queue.start(limit: 10, now: now)
        #expect(started.map(\.offset) == [0, 2])
        queue.hold(started[0], until: now + .seconds(1))
        queue.finish(started[1])
        #expect(queue.start(limit: 10, now: now).isEmpty, "key a waits for its retry")
        #expect(queue.nextDue == now + .seconds(1))
        let retried = queue.start(limit: 10, now: now + .seconds(2))
        #expect(retried.map(\.offset) == [0], "the retry is due: the same message again")

        for offset in [0, 1] as [Int64] { queue.add(OutboxInboxMessage(partition: other, offset: offset, key: "c", payload: [], headers: [])) }
        let running = queue.start(limit: 10, now: now + .seconds(2))
        #expect(running.map(\.partition) == [other])
        #expect(queue.count == 4)
        queue.drop([other])
        #expect(queue.count == 3, "the running message of the revoked partition stays until it finishes")
        #expect(queue.isRunning(in: [other]))
        queue.finish(running[0])
        #expect(queue.count == 2 && !queue.isRunning(in: [other]))
        queue.finish(retried[0])
        #expect(queue.start(limit: 10, now: now + .seconds(2)).map(\.offset) == [1])
    }
}
