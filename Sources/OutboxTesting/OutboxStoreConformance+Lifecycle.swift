import Foundation
import Synchronization
import Outbox

extension OutboxStoreConformance {
    func shutdownDuringFailuresAcknowledgesNothing(_ subject: any OutboxStoreUnderTest) async throws {
        let perKey = Self.keyedMessages(keys: 20, perKey: 10)
        try await enqueueInterleaved(subject, perKey, transactionSize: 40)
        let recorder = RecordingPublisher()
        let failing = FaultInjectingPublisher(recorder: recorder, delay: .milliseconds(100), messageFault: { _ in
            .retriable("request timed out")
        })
        let running = relay(subject, failing)
        try await waitUntil("messages are being retried") { try await subject.store.status(now: Date()).retrying > 0 }
        let started = ContinuousClock.now
        try await running.stop()
        let took = ContinuousClock.now - started
        try expect(took < .seconds(5), "graceful shutdown took \(took), more than the grace period allows")
        let status = try await subject.store.status(now: Date())
        try expect(failing.injectedMessageFailures > 0, "the failures must have fired")
        try expect(recorder.deliveryCount == 0, "the broker took nothing")
        try expect(status.pending == 200, "nothing the broker did not take may leave the outbox: pending \(status.pending) of 200")
        try expect(status.relays.isEmpty, "the relay should have released its partitions on shutdown")

        // The messages are all still there for the next relay.
        let next = RecordingPublisher()
        let successor = relay(subject, next)
        try await waitUntil("a healthy relay drains the backlog") { Set(next.deliveries.map(\.message.id)).count >= 200 }
        try await successor.stop()
        let audit = Self.audit(perKey, next)
        try expect(audit.isClean && audit.duplicates == 0, "after shutdown: \(audit)")
    }

    func brokerOutageUsesNoAttempts(_ subject: any OutboxStoreUnderTest) async throws {
        let perKey = Self.keyedMessages(keys: 10, perKey: 10)
        try await enqueueInterleaved(subject, perKey, transactionSize: 20)
        let recorder = RecordingPublisher()
        let outage = OutageSwitch()
        let publisher = FaultInjectingPublisher(recorder: recorder, batchFault: { _ in outage.isDown ? .unavailable : nil })
        let running = relay(subject, publisher)
        // The relay must meet the outage, and keep meeting it, before the counts prove anything.
        try await waitUntil("the relay meets the outage three times") { publisher.injectedOutages >= 3 }
        let during = try await subject.store.status(now: Date())
        try expect(recorder.deliveryCount == 0 && during.pending == 100, "nothing may be published or lost while the broker is down")
        try expect(during.retrying == 0 && during.dead == 0, "an unreachable broker must not use up attempts (retrying \(during.retrying), dead \(during.dead))")
        outage.isDown = false
        try await waitUntil("the backlog drains after the outage") { Set(recorder.deliveries.map(\.message.id)).count >= 100 }
        try await running.stop()
        let audit = Self.audit(perKey, recorder)
        try expect(audit.isClean && audit.duplicates == 0, "after an outage: \(audit)")
    }

    func idleRelayWakesUpPromptly(_ subject: any OutboxStoreUnderTest) async throws {
        let recorder = RecordingPublisher()
        let running = relay(subject, recorder, .forTesting(pollInterval: .seconds(30)))
        try await waitUntil("the relay holds its partitions") {
            try await subject.store.status(now: Date()).relays.first.map { !$0.partitions.isEmpty } ?? false
        }
        try await Task.sleep(for: .milliseconds(300))  // let it go idle
        var worst = Duration.zero
        for round in 0..<3 {
            let started = ContinuousClock.now
            try await subject.enqueueCommitted([OutboxMessage(topic: "orders", key: "k", text: "wake up \(round)")])
            try await waitUntil("an idle relay publishes a new message", timeout: .seconds(10)) { recorder.deliveryCount > round }
            worst = max(worst, ContinuousClock.now - started)
            try await Task.sleep(for: .milliseconds(200))
        }
        try await running.stop()
        try expect(worst <= harness.wakeUpBound, "an idle relay took \(worst) to publish a new message; the bound is \(harness.wakeUpBound)")
    }

    func relaysRebalanceWhenJoiningAndLeaving(_ subject: any OutboxStoreUnderTest) async throws {
        let recorder = RecordingPublisher()
        let first = relay(subject, recorder, .forTesting(relayID: "relay-a"))
        let partitionCount = try await subject.store.status(now: Date()).partitionCount
        try await waitUntil("the first relay holds every partition") {
            try await subject.store.status(now: Date()).relays.first?.partitions.count == partitionCount
        }
        let early = Self.keyedMessages(keys: 20, perKey: 10, prefix: "early")
        try await enqueueInterleaved(subject, early, transactionSize: 10)
        let second = relay(subject, recorder, .forTesting(relayID: "relay-b"))
        let late = Self.keyedMessages(keys: 20, perKey: 10, prefix: "late")
        try await enqueueInterleaved(subject, late, transactionSize: 5)
        try await waitUntil("two relays split the partitions evenly", timeout: .seconds(15)) {
            let relays = try await subject.store.status(now: Date()).relays
            let counts = relays.map(\.partitions.count)
            return relays.count == 2 && counts.reduce(0, +) == partitionCount && abs(counts[0] - counts[1]) <= 1
        }
        try await first.stop()
        try await waitUntil("the remaining relay takes every partition", timeout: .seconds(15)) {
            let relays = try await subject.store.status(now: Date()).relays
            return relays.count == 1 && relays[0].relayID == "relay-b" && relays[0].partitions.count == partitionCount
        }
        let more = Self.keyedMessages(keys: 20, perKey: 5, prefix: "more")
        try await enqueueInterleaved(subject, more, transactionSize: 7)
        let total = 20 * 10 * 2 + 20 * 5
        try await waitUntil("everything is published across the hand-overs") { Set(recorder.deliveries.map(\.message.id)).count >= total }
        try await second.stop()
        let audit = Self.audit(early + late + more, recorder)
        try expect(audit.isClean && audit.duplicates == 0, "hand-overs must keep order and add no duplicates: \(audit)")
    }
}

/// A broker switch for outage tests.
final class OutageSwitch: Sendable {
    private let state = Mutex(true)
    var isDown: Bool {
        get { state.withLock { $0 } }
        set { state.withLock { $0 = newValue } }
    }
}
