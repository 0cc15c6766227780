import Foundation
import MetricsTestKit
import Outbox
import OutboxTesting
import Testing

@Suite struct RelayMetricsTests {
    @Test func relayCountsPublishedFailedAndDeadLetteredMessages() async throws {
        let metrics = TestMetrics()
        let store = InMemoryOutboxStore()
        let messages = (0..<10).map { OutboxMessage(topic: "orders", key: "k\($0)", text: "m\($0)") }
        try await store.enqueueCommitted(messages)
        let recorder = RecordingPublisher()
        let poison = messages[3].id
        let publisher = FaultInjectingPublisher(recorder: recorder, messageFault: { record in
            record.message.id == poison ? .permanent("invalid record") : nil
        })
        var configuration = OutboxRelayConfiguration.forTesting()
        configuration.metricsFactory = metrics
        configuration.backlogGaugeInterval = .milliseconds(1)
        let running = RunningRelay(OutboxRelay(store: store, publisher: publisher, configuration: configuration,
                                               logger: OutboxStoreConformance.defaultLogger))
        try await waitUntil("the poison is dead and the rest published") {
            try await store.status(now: Date()).dead == 1 && recorder.deliveryCount == 9
        }
        try await waitUntil("the backlog gauges show the drained outbox") {
            (try? metrics.expectGauge("outbox_pending_messages").lastValue) == 0
                && (try? metrics.expectGauge("outbox_dead_letters").lastValue) == 1
        }
        try await running.stop()
        #expect(publisher.injectedMessageFailures == 2)
        #expect(try metrics.expectCounter("outbox_messages_published_total").totalValue == 9)
        #expect(try metrics.expectCounter("outbox_messages_dead_lettered_total").totalValue == 1)
        #expect(try metrics.expectCounter("outbox_messages_failed_total", [("retriable", "false")]).totalValue == 2)
        #expect(try metrics.expectTimer("outbox_commit_to_ack_seconds").values.count == 9)
        #expect(try !metrics.expectTimer("outbox_batch_duration_seconds").values.isEmpty)
        #expect(try metrics.expectGauge("outbox_pending_messages").lastValue == 0)
        #expect(try metrics.expectGauge("outbox_dead_letters").lastValue == 1)
        #expect(try metrics.expectGauge("outbox_oldest_pending_age_seconds").lastValue == 0)
        #expect(try metrics.expectGauge("outbox_partitions_owned").lastValue ?? 0 > 0)
        #expect(try metrics.expectGauge("outbox_live_relays").lastValue == 1)
        #expect(try metrics.expectGauge("outbox_publisher_in_flight_messages").lastValue == 0)
        for operation in ["claim", "acknowledge", "heartbeat", "backlog"] {
            #expect(try !metrics.expectTimer("outbox_store_call_duration_seconds", [("operation", operation)]).values.isEmpty)
        }
    }

    @Test func relayRefusesAnInconsistentConfiguration() async throws {
        var configuration = OutboxRelayConfiguration.forTesting()
        configuration.heartbeatInterval = .seconds(10)
        configuration.leaseDuration = .seconds(5)
        let relay = OutboxRelay(store: InMemoryOutboxStore(), publisher: RecordingPublisher(), configuration: configuration,
                                logger: OutboxStoreConformance.defaultLogger)
        await #expect(throws: OutboxError.self) { try await relay.run() }
    }
}
