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

    init(written: DemoWriter.Written, delivered: [DemoDestination.Delivered], latencies: [Double], elapsed: Duration) {
        audit = DeliveryAudit(committedByKey: written.idsByCustomer, deliveredIDs: delivered.map(\.id))
        payloadMismatches = delivered.filter { message in written.payloads[message.id].map { $0 != message.payload } ?? false }.count
        // The application's header must survive; Kafka adds outbox-id and outbox-type.
        headerMismatches = delivered.filter { message in
            !message.headers.contains(OutboxHeader("content-type", "application/json"))
        }.count
        messages = written.payloads.count
        self.elapsed = elapsed
        self.latencies = latencies.sorted()
    }

    var isClean: Bool { audit.isClean && payloadMismatches == 0 && headerMismatches == 0 && audit.delivered == messages }

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
            \(isClean ? "OK: every message arrived once, byte-exact, with its headers, in per-customer order." : "FAILED: see the figures above.")
            """
    }
}
