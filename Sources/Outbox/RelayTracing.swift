import Foundation
import Instrumentation
import ServiceContextModule
import Tracing

/// The relay's publish spans: one producer span per message, child of the trace captured at
/// enqueue (the message's `traceparent`), with OpenTelemetry's messaging attributes; the message
/// goes to the broker carrying that span's context instead, so the consumer's work is a child of
/// the publish. Without a tracer bootstrapped (the no-op tracer), it does nothing at all.
struct RelayTracing: Sendable {
    private let tracer: (any Tracer)?
    private let system: String

    init(tracer: (any Tracer)?, system: String) {
        let chosen = tracer ?? InstrumentationSystem.tracer
        self.tracer = chosen is NoOpTracer ? nil : chosen
        self.system = system
    }

    /// Starts a span per record and returns the records carrying their span's context.
    func start(_ records: [OutboxRecord]) -> (records: [OutboxRecord], spans: [any Span]) {
        guard let tracer else { return (records, []) }
        var traced: [OutboxRecord] = []
        var spans: [any Span] = []
        traced.reserveCapacity(records.count)
        spans.reserveCapacity(records.count)
        for record in records {
            var parent = ServiceContext.topLevel
            tracer.extract(record.message.headers, into: &parent, using: OutboxHeaderExtractor())
            let topic = record.message.topic
            let span = tracer.startSpan("send \(topic)", context: parent, ofKind: .producer)
            span.attributes["messaging.system"] = system
            span.attributes["messaging.operation.type"] = "send"
            span.attributes["messaging.operation.name"] = "send"
            span.attributes["messaging.destination.name"] = topic
            span.attributes["messaging.message.id"] = record.message.id.uuidString.lowercased()
            span.attributes["messaging.message.body.size"] = record.message.payload.count
            span.attributes["outbox.attempt"] = record.attempts + 1
            var injected: [OutboxHeader] = []
            tracer.inject(span.context, into: &injected, using: OutboxHeaderInjector())
            var copy = record
            let replaced = Set(injected.map { $0.name.lowercased() })
            copy.message.headers = record.message.headers.filter { !replaced.contains($0.name.lowercased()) } + injected
            traced.append(copy)
            spans.append(span)
        }
        return (traced, spans)
    }

    /// Ends the spans with their outcomes (`nil`: the whole publish failed with `error`).
    func end(_ spans: [any Span], outcomes: [OutboxPublishOutcome]?, error: (any Error)? = nil) {
        for (index, span) in spans.enumerated() {
            let outcome = outcomes.flatMap { index < $0.count ? $0[index] : nil }
            if let outcome, outcome.isDelivered {
                span.setStatus(SpanStatus(code: .ok))
            } else if let outcome, outcome.isSkipped {
                span.attributes["outbox.outcome"] = "skipped"
            } else {
                let reason = outcome.map { "\($0)" } ?? error.map { "publisher unavailable: \($0)" } ?? "no outcome"
                span.setStatus(SpanStatus(code: .error, message: reason))
            }
            span.end()
        }
    }
}

/// Reads a propagated value from the outbox headers (the last of a name wins, as the injector appends).
struct OutboxHeaderExtractor: Extractor {
    func extract(key: String, from carrier: [OutboxHeader]) -> String? {
        carrier.last { $0.name.lowercased() == key.lowercased() }?.value
    }
}
