import Foundation
import Outbox
import OutboxTesting
import Testing

/// How often the relays claim each message: the store work a drain costs.
@Suite struct RelayClaimTests {
    /// Two relays over 1,000 keys with batches of 500 on a broker that takes 5 ms a batch: each
    /// relay's second batch in flight is claimed while its first holds every key it owns. Those
    /// messages used to be thrown away and claimed again (1.46 rows claimed per message); they now
    /// wait behind the batch in flight and go next without another claim.
    @Test func overlappingBatchesClaimEachMessageAboutOnce() async throws {
        let store = InMemoryOutboxStore(partitionCount: 16)
        let messages = (0..<20_000).map { OutboxMessage(topic: "orders", key: "k\($0 % 1_000)", text: "\($0)") }
        for start in stride(from: 0, to: messages.count, by: 1_000) {
            try await store.enqueueCommitted(Array(messages[start..<start + 1_000]))
        }
        let recorder = RecordingPublisher()
        let publisher = FaultInjectingPublisher(recorder: recorder, delay: .milliseconds(5))
        let relays = (0..<2).map { _ in
            RunningRelay(OutboxRelay(store: store, publisher: publisher, configuration: .forTesting(batchSize: 500),
                                     logger: OutboxStoreConformance.defaultLogger))
        }
        try await waitUntil("every message is published", timeout: .seconds(60)) { recorder.deliveryCount >= messages.count }
        for relay in relays { try await relay.stop() }
        let audit = DeliveryAudit(committedByKey: Dictionary(grouping: messages, by: \.key).mapValues { $0.map(\.id) },
                                  deliveredIDs: recorder.deliveries.map(\.message.id))
        #expect(audit.isClean && audit.duplicates == 0, "\(audit)")
        let perMessage = Double(store.rowsClaimed) / Double(messages.count)
        #expect(perMessage < 1.1, "rows claimed per message: \(perMessage)")
    }
}
