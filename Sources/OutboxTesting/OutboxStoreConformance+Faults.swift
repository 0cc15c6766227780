import Foundation
import Outbox

/// Checks for faults that healthy runs never meet: clocks that disagree, failure reasons no
/// column can hold, dead letters sent back after their key moved on.
extension OutboxStoreConformance {
    /// A message stamped in the future (an application host whose clock runs ahead, or a
    /// `createdAt` set by the caller) still goes first among the messages of its key.
    func futureCreatedAtKeepsKeyOrder(_ subject: any OutboxStoreUnderTest) async throws {
        let ahead = OutboxMessage(topic: "orders", key: "clock", type: "OrderPlaced", payload: Array("first".utf8),
                                  createdAt: Date().addingTimeInterval(3_600))
        let behind = OutboxMessage(topic: "orders", key: "clock", type: "OrderPaid", payload: Array("second".utf8),
                                   createdAt: Date().addingTimeInterval(-3_600))
        let other = OutboxMessage(topic: "orders", key: "other", text: "unrelated")
        try await subject.enqueueCommitted([ahead])
        try await subject.enqueueCommitted([behind, other])
        let recorder = RecordingPublisher()
        let running = relay(subject, recorder)
        // Wait for the unrelated message, then a little longer: a store that let `createdAt`
        // decide would have published `behind` alone by then.
        try await waitUntil("the unrelated message is published", timeout: .seconds(20)) {
            recorder.deliveries.contains { $0.message.id == other.id }
        }
        try await waitUntil("both messages of the key are published", timeout: .seconds(5)) {
            Set(recorder.deliveries.map(\.message.id)).isSuperset(of: [ahead.id, behind.id])
        }
        try await running.stop()
        let order = recorder.deliveries.map(\.message.id).filter { $0 == ahead.id || $0 == behind.id }
        try expect(order == [ahead.id, behind.id],
                   "a message whose createdAt is an hour ahead must still go before the later message of its key; published \(order.count) in the wrong order or twice")
    }

    /// A publisher's failure reason of a megabyte with NUL and control characters is stored (cut
    /// and cleaned), so the acknowledgement succeeds and the relay goes on.
    func hugeFailureReasonIsStored(_ subject: any OutboxStoreUnderTest) async throws {
        let poison = OutboxMessage(topic: "orders", key: "poison", text: "poison")
        let healthy = (0..<5).map { OutboxMessage(topic: "orders", key: "h\($0)", text: "healthy \($0)") }
        try await subject.enqueueCommitted([poison] + healthy)
        let reason = "broker says: \u{0}\u{1}\r\n" + String(repeating: "x\u{0}", count: 512 * 1024)
        let recorder = RecordingPublisher()
        let publisher = FaultInjectingPublisher(recorder: recorder, messageFault: { record in
            record.message.id == poison.id ? .permanent(reason) : nil
        })
        let running = relay(subject, publisher)
        try await waitUntil("the poison message is dead-lettered with its reason", timeout: .seconds(20)) {
            try await subject.store.status(now: Date()).dead == 1
        }
        try await waitUntil("the healthy messages are published") { recorder.deliveryCount >= healthy.count }
        try await running.stop()
        try expect(publisher.injectedMessageFailures >= 1, "the huge failure reason must have been reported")
        let letters = try await subject.store.deadLetters(limit: 10, afterSequence: nil)
        let stored = letters.first?.record.lastError ?? ""
        try expect(stored.hasPrefix("broker says: "), "the stored reason keeps its beginning")
        try expect(!stored.utf8.contains(0), "the stored reason holds no NUL")
        try expect(stored.utf8.count <= 4096, "the stored reason is cut, it has \(stored.utf8.count) bytes")
    }

    /// A dead letter sent back after later messages of its key were delivered is published again,
    /// after them (they are gone already), and before any message of its key still pending.
    func deadLetterRetriedAfterItsKeyMovedOn(_ subject: any OutboxStoreUnderTest) async throws {
        let first = OutboxMessage(topic: "orders", key: "moved-on", text: "1 (dead)")
        let second = OutboxMessage(topic: "orders", key: "moved-on", text: "2")
        try await subject.enqueueCommitted([first, second])
        let recorder = RecordingPublisher()
        let publisher = FaultInjectingPublisher(recorder: recorder, messageFault: { record in
            record.message.id == first.id && record.attempts == 0 ? .permanent("rejected") : nil
        })
        var running = relay(subject, publisher, .forTesting(retryPolicy: .init(
            maximumAttempts: 50, maximumPermanentFailureAttempts: 1, initialBackoff: .milliseconds(20), maximumBackoff: .milliseconds(200))))
        try await waitUntil("the first message is dead and the second published", timeout: .seconds(20)) {
            recorder.deliveries.contains { $0.message.id == second.id }
        }
        try await running.stop()
        try expect(publisher.injectedMessageFailures == 1, "the first message is rejected once, fired \(publisher.injectedMessageFailures)")
        let letters = try await subject.store.deadLetters(limit: 10, afterSequence: nil)
        try expect(letters.map(\.record.message.id) == [first.id], "the first message is the one dead letter")
        // A third message of the key arrives while the first is still dead; then the first is sent back.
        let third = OutboxMessage(topic: "orders", key: "moved-on", text: "3")
        try await subject.enqueueCommitted([third])
        let retried = try await subject.store.retryDeadLetters(sequences: letters.map(\.record.sequence), now: Date())
        try expect(retried == 1, "the dead letter is sent back")
        running = relay(subject, recorder)
        try await waitUntil("the retried and the third message are published", timeout: .seconds(20)) {
            Set(recorder.deliveries.map(\.message.id)).isSuperset(of: [first.id, third.id])
        }
        try await running.stop()
        let order = recorder.deliveries.map(\.message.id)
        try expect(order == [second.id, first.id, third.id],
                   "a retried dead letter goes after what its key already delivered and before what is still pending")
        let status = try await subject.store.status(now: Date())
        try expect(status.pending == 0 && status.dead == 0, "nothing left: pending \(status.pending), dead \(status.dead)")
    }
}

extension OutboxStoreConformance {
    /// Two relays started with one relay id never share leases: the second holds nothing while the
    /// first lives, and once the first crashes it publishes within about one lease duration.
    func sameRelayIDNeverSharesLeases(_ subject: any OutboxStoreUnderTest) async throws {
        let configuration = OutboxRelayConfiguration.forTesting(relayID: "twin")
        let firstRecorder = RecordingPublisher(), secondRecorder = RecordingPublisher()
        let first = relay(subject, firstRecorder, configuration)
        try await waitUntil("the first relay holds the partitions") {
            try await subject.store.status(now: Date()).relays.first.map { !$0.partitions.isEmpty } ?? false
        }
        let second = relay(subject, secondRecorder, configuration)
        try await Task.sleep(for: .seconds(1))  // four heartbeats of the second relay
        let messages = (0..<40).map { OutboxMessage(topic: "orders", key: "k\($0 % 8)", text: "\($0)") }
        try await subject.enqueueCommitted(messages)
        try await waitUntil("the first relay publishes everything") { firstRecorder.deliveryCount >= messages.count }
        try expect(secondRecorder.deliveryCount == 0,
                   "a second relay with the same id published \(secondRecorder.deliveryCount) messages while the first was live")
        let status = try await subject.store.status(now: Date())
        try expect(status.relays.count == 1 && status.relays[0].partitions.count == status.partitionCount,
                   "one registration holds every partition, found \(status.relays.map { "\($0.relayID): \($0.partitions.count)" })")
        await first.kill()
        let crashed = ContinuousClock.now
        let later = (0..<10).map { OutboxMessage(topic: "orders", key: "k\($0 % 8)", text: "after \($0)") }
        try await subject.enqueueCommitted(later)
        try await waitUntil("the second relay takes over") { secondRecorder.deliveryCount >= later.count }
        let takeover = ContinuousClock.now - crashed
        try await second.stop()
        // One lease (1.5 s), a heartbeat (250 ms) and a poll (200 ms), with room for a loaded machine.
        try expect(takeover < .seconds(4), "the second relay took \(takeover) to take over the crashed relay's id")
        try expect(Set(secondRecorder.deliveries.map(\.message.id)).isSuperset(of: later.map(\.id)), "the second relay published the later messages")
    }
}

extension OutboxStoreConformance {
    /// A claim stops at the message whose payload reaches its byte bound, and always returns at
    /// least one message, so a relay reads a backlog of large messages a few at a time.
    func claimStopsAtTheByteBound(_ subject: any OutboxStoreUnderTest) async throws {
        let messages = (0..<10).map { OutboxMessage(topic: "large", key: "k\($0 % 3)", payload: Array(repeating: UInt8($0), count: 100_000)) }
        try await subject.enqueueCommitted(messages)
        let grant = try await subject.store.heartbeat(OutboxHeartbeat(relayID: "bytes", leaseDuration: .seconds(10)))
        let partitions = grant.owned.sorted()
        let bounded = try await subject.store.claim(partitions: partitions, limit: 10, maximumBytes: 250_000, now: Date(), excluding: [])
        try expect(bounded.map(\.message.id) == messages.prefix(3).map(\.id),
                   "a claim bounded to 250,000 bytes returns the three messages that reach it, returned \(bounded.count)")
        let one = try await subject.store.claim(partitions: partitions, limit: 10, maximumBytes: 1, now: Date(), excluding: [])
        try expect(one.map(\.message.id) == [messages[0].id], "a bound below one message still returns that message")
        let skipping = try await subject.store.claim(partitions: partitions, limit: 10, maximumBytes: 150_000, now: Date(),
                                                     excluding: bounded.map(\.sequence))
        try expect(skipping.map(\.message.id) == Array(messages[3...4]).map(\.id), "the bound counts only messages not left out")
        let unbounded = try await subject.store.claim(partitions: partitions, limit: 10, now: Date())
        try expect(unbounded.count == 10, "without a bound the limit decides")
    }
}
