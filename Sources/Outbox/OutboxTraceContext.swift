public import Instrumentation
import ServiceContextModule

extension OutboxMessage {
    /// The message with the current trace context (W3C `traceparent`/`tracestate`, or whatever the
    /// bootstrapped instrument propagates) added to its headers.
    ///
    /// Stores call this at enqueue, so the trace of the request that wrote the message continues
    /// at the consumer. Headers the application already set are kept, never overwritten.
    public func capturingTraceContext(
        _ context: ServiceContext? = ServiceContext.current,
        instrument: any Instrument = InstrumentationSystem.instrument
    ) -> OutboxMessage {
        guard let context else { return self }
        var injected: [OutboxHeader] = []
        instrument.inject(context, into: &injected, using: OutboxHeaderInjector())
        guard !injected.isEmpty else { return self }
        var copy = self
        let present = Set(headers.map { $0.name.lowercased() })
        copy.headers.append(contentsOf: injected.filter { !present.contains($0.name.lowercased()) })
        return copy
    }
}

/// Writes a propagated value as an outbox header.
struct OutboxHeaderInjector: Injector {
    func inject(_ value: String, forKey key: String, into carrier: inout [OutboxHeader]) {
        carrier.append(OutboxHeader(key, value))
    }
}
