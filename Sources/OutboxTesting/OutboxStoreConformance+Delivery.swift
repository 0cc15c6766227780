import Foundation
import Synchronization
import Outbox

extension OutboxStoreConformance {
    func rollbackEnqueuesNothing(_ subject: any OutboxStoreUnderTest) async throws {
        let rolledBack = [OutboxMessage(topic: "orders", key: "a", text: "rolled back 1"),
                          OutboxMessage(topic: "orders", key: "b", text: "rolled back 2")]
        try await subject.enqueueRolledBack(rolledBack)
        let committed = OutboxMessage(topic: "orders", key: "a", text: "committed")
        try await subject.enqueueCommitted([committed])
        let status = try await subject.store.status(now: Date())
        try expect(status.pending == 1, "after one rollback and one commit, pending should be 1, was \(status.pending)")

        let recorder = RecordingPublisher()
        let running = relay(subject, recorder)
        try await waitUntil("the committed message is published") { recorder.deliveryCount >= 1 }
        try await Task.sleep(for: .milliseconds(300))
        try await running.stop()
        try expect(recorder.deliveries.map(\.message.id) == [committed.id],
                   "only the committed message should be published, got \(recorder.deliveryCount) deliveries")
    }

    func messagesComeOutByteExact(_ subject: any OutboxStoreUnderTest) async throws {
        let hostile = "'; DROP TABLE outbox_messages; -- \" \\ % _ ` $1 ? :name /* */ \u{1}\t\n"
        let wide = "𝄞🎉𐍈 日本 ünïcödé"
        let binary = (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        let messages = [
            OutboxMessage(topic: "orders" + hostile, key: hostile, type: hostile,
                          payload: Array(hostile.utf8), headers: [OutboxHeader(hostile, hostile), OutboxHeader("x", "1")]),
            OutboxMessage(topic: "orders-" + wide, key: wide, type: wide, payload: Array(wide.utf8),
                          headers: [OutboxHeader(wide, wide), OutboxHeader("dup", "1"), OutboxHeader("dup", "2")]),
            OutboxMessage(topic: "binary", key: nil, type: nil, payload: Array(0...255) + binary),
            OutboxMessage(topic: "empty", key: "", type: "", payload: []),
            // 10 MB: larger than most brokers take, but the store must keep it whole.
            OutboxMessage(topic: "large", key: "large", payload: Self.pattern(count: 10 * 1024 * 1024)),
        ]
        // Each again in a transaction of its own: stores write a single message by another path
        // (one statement with the partition's lock, a function with one argument per column).
        let single = messages.prefix(4).map {
            OutboxMessage(topic: $0.topic, key: $0.key, type: $0.type, payload: $0.payload, headers: $0.headers)
        }
        try await subject.enqueueCommitted(messages)
        for message in single { try await subject.enqueueCommitted([message]) }
        let allMessages = messages + single
        let recorder = RecordingPublisher()
        let running = relay(subject, recorder)
        try await waitUntil("all hostile messages are published") { recorder.deliveryCount >= allMessages.count }
        try await running.stop()
        let byID = Dictionary(recorder.deliveries.map { ($0.message.id, $0.message) }, uniquingKeysWith: { first, _ in first })
        for original in allMessages {
            guard let received = byID[original.id] else { throw ConformanceFailure("[\(harness.name)] message on topic \(original.topic.count) chars was lost") }
            try expect(received.topic == original.topic, "topic changed")
            try expect(received.key == original.key, "key changed")
            try expect(received.type == original.type, "type changed")
            try expect(received.payload == original.payload, "payload of \(original.payload.count) bytes changed (now \(received.payload.count) bytes)")
            try expect(received.headers == original.headers, "headers changed: \(received.headers.count) vs \(original.headers.count)")
            try expect(abs(received.createdAt.timeIntervalSince(original.createdAt)) < 0.001, "createdAt changed by more than 1 ms")
        }
    }

    /// Bytes that are not all alike, made without a per-element closure (fast in debug builds too).
    static func pattern(count: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        bytes.withUnsafeMutableBufferPointer { buffer in
            for index in buffer.indices { buffer[index] = UInt8(truncatingIfNeeded: index % 251) }
        }
        return bytes
    }

    func threeRelaysKeepOrderUnderRandomFailures(_ subject: any OutboxStoreUnderTest) async throws {
        let perKey = Self.keyedMessages(keys: 100, perKey: 100)
        let recorder = RecordingPublisher()
        let publisher = FaultInjectingPublisher(recorder: recorder, messageFault: { _ in
            Double.random(in: 0..<1) < 0.03 ? .retriable("random broker hiccup") : nil
        })
        let relays = (0..<3).map { _ in relay(subject, publisher) }
        // Four writers, each owning a quarter of the keys, commit while the relays run.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for writer in 0..<4 {
                let mine = Array(perKey[(writer * 25)..<((writer + 1) * 25)])
                group.addTask { try await self.enqueueInterleaved(subject, mine, transactionSize: 1 + writer * 7) }
            }
            try await group.waitForAll()
        }
        let total = perKey.reduce(0) { $0 + $1.count }
        try await waitUntil("all \(total) messages are published (have \(Set(recorder.deliveries.map(\.message.id)).count))", timeout: .seconds(180)) {
            Set(recorder.deliveries.map(\.message.id)).count >= total
        }
        for running in relays { try await running.stop() }
        try expect(publisher.injectedMessageFailures > 0, "the random failures must have fired")
        let audit = Self.audit(perKey, recorder)
        try expect(audit.isClean, "3 relays: \(audit)")
        try expect(audit.duplicates == 0, "no relay died, so there must be no duplicates: \(audit)")
        let status = try await subject.store.status(now: Date())
        try expect(status.pending == 0, "pending should be 0 after draining, was \(status.pending)")
        try expect(status.relays.isEmpty, "stopped relays should have resigned, \(status.relays.count) still registered")
    }

    func abandonedRelayLosesNothing(_ subject: any OutboxStoreUnderTest) async throws {
        let perKey = Self.keyedMessages(keys: 50, perKey: 20)
        try await enqueueInterleaved(subject, perKey, transactionSize: 50)
        let recorder = RecordingPublisher()
        let batches = BatchCounter()
        let crashing = FaultInjectingPublisher(recorder: recorder, batchFault: { _ in
            batches.next() == 3 ? .crash(afterDelivering: 10) : nil
        })
        var configuration = OutboxRelayConfiguration.forTesting(relayID: "doomed", batchSize: 50, maximumBatchesInFlight: 1)
        configuration.pollInterval = .milliseconds(100)
        let doomed = relay(subject, crashing, configuration)
        try await waitUntil("the relay crashes mid-batch") { !crashing.crashedBatches.isEmpty }
        await doomed.kill()

        let survivor = relay(subject, recorder, .forTesting(relayID: "survivor"))
        let total = perKey.reduce(0) { $0 + $1.count }
        try await waitUntil("the survivor publishes everything") { Set(recorder.deliveries.map(\.message.id)).count >= total }
        try await survivor.stop()

        let audit = Self.audit(perKey, recorder)
        try expect(audit.isClean, "after an abandoned batch: \(audit)")
        let crashedIDs = Set(crashing.crashedBatches.flatMap { $0.prefix(10) }.map(\.message.id))
        var seen: Set<UUID> = []
        for delivery in recorder.deliveries where !seen.insert(delivery.message.id).inserted {
            try expect(crashedIDs.contains(delivery.message.id), "a message outside the abandoned batch was duplicated")
        }
        try expect(audit.duplicates <= 10, "at most the 10 messages delivered before the crash may repeat: \(audit)")
    }

    func poisonMessageIsDeadLettered(_ subject: any OutboxStoreUnderTest) async throws {
        var perKey = Self.keyedMessages(keys: 10, perKey: 30)
        perKey.append((0..<20).map { OutboxMessage(topic: "audit", text: "keyless #\($0)") })
        let poison: Set<UUID> = [perKey[1][0].id, perKey[2][15].id, perKey[10][3].id]
        try await enqueueInterleaved(subject, perKey, transactionSize: 25)
        let recorder = RecordingPublisher()
        let publisher = FaultInjectingPublisher(recorder: recorder, messageFault: { record in
            poison.contains(record.message.id) ? .permanent("message too large for the broker") : nil
        })
        let running = relay(subject, publisher)
        let total = perKey.reduce(0) { $0 + $1.count }
        try await waitUntil("everything but the poison is published and the poison is dead") {
            let dead = try await subject.store.status(now: Date()).dead
            return dead == poison.count && Set(recorder.deliveries.map(\.message.id)).count >= total - poison.count
        }
        try await running.stop()
        try expect(publisher.injectedMessageFailures == 2 * poison.count,
                   "each poison message fails twice (maximumPermanentFailureAttempts), fired \(publisher.injectedMessageFailures)")
        let letters = try await subject.store.deadLetters(limit: 100, afterSequence: nil)
        try expect(Set(letters.map(\.record.message.id)) == poison, "the dead letters should be exactly the poison messages")
        for letter in letters {
            try expect(letter.record.lastError == "message too large for the broker", "a dead letter lost its reason")
            try expect(letter.record.attempts == 2, "a permanent failure is tried maximumPermanentFailureAttempts (2) times, was \(letter.record.attempts)")
        }
        let audit = Self.audit(perKey, recorder, deadLettered: poison)
        try expect(audit.isClean && audit.duplicates == 0, "poison isolation: \(audit)")
    }

    func retryHoldsBackOnlyItsKey(_ subject: any OutboxStoreUnderTest) async throws {
        let slow = (0..<5).map { OutboxMessage(topic: "orders", key: "slow", text: "slow #\($0)") }
        let fast = (0..<50).map { OutboxMessage(topic: "orders", key: "fast-\($0 % 10)", text: "fast #\($0)") }
        try await subject.enqueueCommitted(slow + fast)
        let recorder = RecordingPublisher()
        let head = slow[0].id
        let publisher = FaultInjectingPublisher(recorder: recorder, messageFault: { record in
            record.message.id == head && record.attempts < 3 ? .retriable("leader not available") : nil
        })
        let running = relay(subject, publisher)
        try await waitUntil("all 55 messages are published") { recorder.deliveryCount >= 55 }
        try await running.stop()
        try expect(publisher.injectedMessageFailures == 3, "the head of the slow key fails three times, fired \(publisher.injectedMessageFailures)")
        let order = recorder.deliveries.map(\.message.id)
        let slowOrder = order.filter { id in slow.contains { $0.id == id } }
        try expect(slowOrder == slow.map(\.id), "the retried key must arrive in commit order, once each")
        let firstSlow = order.firstIndex(of: head)!
        let fastBefore = order[..<firstSlow].filter { id in fast.contains { $0.id == id } }.count
        try expect(fastBefore == fast.count, "other keys must flow while one retries: only \(fastBefore) of \(fast.count) arrived first")
        let audit = Self.audit([slow, fast], recorder)
        try expect(audit.isClean && audit.duplicates == 0, "retry isolation: \(audit)")
    }
}

/// Counts batches across concurrent calls.
final class BatchCounter: Sendable {
    private let count = Mutex(0)
    func next() -> Int { count.withLock { $0 += 1; return $0 } }
}
