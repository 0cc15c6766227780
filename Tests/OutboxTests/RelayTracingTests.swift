import Foundation
import InMemoryTracing
import Outbox
import OutboxTesting
import Testing
import Tracing

@Suite struct RelayTracingTests {
    /// The publish span is a child of the trace captured at enqueue, carries the messaging
    /// attributes, and the broker message carries the publish span's context (not the enqueue's).
    @Test func publishSpanContinuesTheEnqueueTraceAndTravelsWithTheMessage() async throws {
        let tracer = InMemoryTracer()
        let request = tracer.startSpan("POST /orders", context: .topLevel)
        let traced = OutboxMessage(topic: "orders", key: "c-1", type: "OrderPlaced", text: "{}").capturingTraceContext(request.context, instrument: tracer)
        request.end()
        let untraced = OutboxMessage(topic: "orders", key: "c-2", text: "{}")
        let poison = OutboxMessage(topic: "orders", key: "c-3", text: "poison")
        let store = InMemoryOutboxStore()
        try await store.enqueueCommitted([traced, untraced, poison])
        let recorder = RecordingPublisher()
        let publisher = FaultInjectingPublisher(recorder: recorder, messageFault: { $0.message.id == poison.id ? .permanent("too large") : nil })
        var configuration = OutboxRelayConfiguration.forTesting()
        configuration.tracer = tracer
        configuration.retryPolicy = OutboxRetryPolicy(maximumAttempts: 1)
        let running = RunningRelay(OutboxRelay(store: store, publisher: publisher, configuration: configuration,
                                               logger: OutboxStoreConformance.defaultLogger))
        try await waitUntil("two delivered and the poison dead") {
            let dead = try await store.status(now: Date()).dead
            return recorder.deliveryCount == 2 && dead == 1
        }
        try await running.stop()

        let sends = tracer.finishedSpans.filter { $0.operationName == "send orders" }
        #expect(sends.count == 3)
        let requestSpan = try #require(tracer.finishedSpans.first { $0.operationName == "POST /orders" })
        let child = try #require(sends.first { $0.attributes["messaging.message.id"]?.toSpanAttribute() == traced.id.uuidString.lowercased().toSpanAttribute() })
        #expect(child.traceID == requestSpan.traceID && child.parentSpanID == requestSpan.spanID, "the publish span is the request's child")
        #expect(child.kind == .producer)
        #expect(child.attributes["messaging.destination.name"]?.toSpanAttribute() == "orders".toSpanAttribute())
        #expect(child.attributes["messaging.system"]?.toSpanAttribute() == "outbox".toSpanAttribute())
        #expect(child.status?.code == .ok)
        let root = try #require(sends.first { $0.attributes["messaging.message.id"]?.toSpanAttribute() == untraced.id.uuidString.lowercased().toSpanAttribute() })
        #expect(root.parentSpanID == nil, "a message without a captured trace starts one")
        let failed = try #require(sends.first { $0.attributes["messaging.message.id"]?.toSpanAttribute() == poison.id.uuidString.lowercased().toSpanAttribute() })
        #expect(failed.status?.code == .error && failed.status?.message?.contains("too large") == true)

        // The broker got the publish span's context in place of the request's.
        let delivered = try #require(recorder.deliveries.first { $0.message.id == traced.id })
        let spanHeader = delivered.message.headers.filter { $0.name == InMemoryTracer.spanIDKey }.map(\.value)
        #expect(spanHeader == [child.spanID], "one span id header, the publish span's: \(delivered.message.headers)")
    }

    /// Without a tracer the relay changes no header.
    @Test func withoutATracerHeadersStayAsWritten() async throws {
        let store = InMemoryOutboxStore()
        let message = OutboxMessage(topic: "orders", key: "k", text: "{}", headers: [OutboxHeader("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")])
        try await store.enqueueCommitted([message])
        let recorder = RecordingPublisher()
        let running = RunningRelay(OutboxRelay(store: store, publisher: recorder, configuration: .forTesting(), logger: OutboxStoreConformance.defaultLogger))
        try await waitUntil("delivered") { recorder.deliveryCount == 1 }
        try await running.stop()
        #expect(recorder.deliveries.first?.message.headers == message.headers)
    }
}
