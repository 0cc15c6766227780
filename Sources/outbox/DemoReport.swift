import Foundation
import Outbox
import OutboxTesting

/// Judges what a consumer read back against what the writers committed.
struct DemoReport {
    let audit: DeliveryAudit
    let payloadMismatches: Int
    let headerMismatches: Int
    let messages: Int
    let elapsed: Duration
    let latencies: [Double]

    /// What the inbox consumers wrote into the projection database.
    struct Projection {
        /// Message ids in the order the projection's rows were written.
        var ids: [UUID]
        /// Rows per consumer.
        var byConsumer: [String: Int]
    }

    /// The projection judged like the broker: each order once, per customer in commit order.
    let projectionAudit: DeliveryAudit?
    let projectionByConsumer: [String: Int]

    init(written: DemoWriter.Written, delivered: [DemoDestination.Delivered], projection: Projection? = nil, latencies: [Double], elapsed: Duration) {
        audit = DeliveryAudit(committedByKey: written.idsByCustomer, deliveredIDs: delivered.map(\.id))
        projectionAudit = projection.map { DeliveryAudit(committedByKey: written.idsByCustomer, deliveredIDs: $0.ids) }
        projectionByConsumer = projection?.byConsumer ?? [:]
        payloadMismatches = delivered.filter { message in written.payloads[message.id].map { $0 != message.payload } ?? false }.count
        // The application's header must survive; Kafka adds outbox-id and outbox-type.
        headerMismatches = delivered.filter { message in
            !message.headers.contains(OutboxHeader("content-type", "application/json"))
        }.count
        messages = written.payloads.count
        self.elapsed = elapsed
        self.latencies = latencies.sorted()
    }

    var isClean: Bool {
        audit.isClean && payloadMismatches == 0 && headerMismatches == 0 && audit.delivered == messages
            && projectionAudit.map { $0.isClean && $0.duplicates == 0 && $0.delivered == messages } ?? true
    }

    func percentile(_ fraction: Double) -> Double {
        guard !latencies.isEmpty else { return 0 }
        return latencies[min(latencies.count - 1, Int(Double(latencies.count) * fraction))]
    }

    func summary(relays: Int, store: String, published: String) -> String {
        let seconds = max(elapsed.timeInterval, 0.001)
        func ms(_ value: Double) -> String { String(format: "%.1f ms", value) }
        return """

            Summary
              messages          \(messages) committed, \(audit.delivered) delivered, \(audit.missing.count) lost
              duplicates        \(audit.duplicates)
              order violations  \(audit.orderViolations)
              payload mismatch  \(payloadMismatches)
              header mismatch   \(headerMismatches)
              throughput        \(Int(Double(messages) / seconds)) msg/s end to end (\(String(format: "%.2f", seconds)) s, \(relays) relays)
              latency           commit → broker ack p50 \(ms(percentile(0.5))), p99 \(ms(percentile(0.99))), max \(ms(latencies.last ?? 0))
              store             \(store)
              published to      \(published)
            \(projectionLines)\(isClean ? "OK: every message arrived once, byte-exact, with its headers, in per-customer order\(projectionAudit == nil ? "" : ", and the consumers handled each order exactly once, in per-customer order")." : "FAILED: see the figures above.")
            """
    }

    private var projectionLines: String {
        guard let projectionAudit else { return "" }
        let consumers = projectionByConsumer.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        return """
              consumers         inbox group \(DemoConsumers.group): \(consumers)
              handled           \(projectionAudit.delivered) of \(messages) orders, handled twice \(projectionAudit.duplicates), not handled \(projectionAudit.missing.count), order violations \(projectionAudit.orderViolations)

            """
    }
}
