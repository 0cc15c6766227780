import Foundation
import Outbox
import OutboxTesting

/// Reads back what the relays published and judges it against what the writers committed.
struct DemoReport {
    let audit: DeliveryAudit
    let payloadMismatches: Int
    let messages: Int
    let elapsed: Duration
    let latencies: [Double]

    init(written: DemoWriter.Written, publishedPath: String, elapsed: Duration) throws {
        let lines = try OutboxJSONLine.read(contentsOf: publishedPath)
        // Lines of one relay are in publish order; across relays, order by publish time.
        let ordered = lines.enumerated().sorted { ($0.element.publishedAt, $0.offset) < ($1.element.publishedAt, $1.offset) }.map(\.element)
        audit = DeliveryAudit(committedByKey: written.idsByCustomer, deliveredIDs: ordered.map(\.id))
        payloadMismatches = lines.filter { line in written.payloads[line.id].map { $0 != line.payload } ?? false }.count
        messages = written.payloads.count
        self.elapsed = elapsed
        var seen: Set<UUID> = []
        latencies = ordered.filter { seen.insert($0.id).inserted }
            .map { $0.publishedAt.timeIntervalSince($0.createdAt) * 1000 }
            .sorted()
    }

    var isClean: Bool { audit.isClean && payloadMismatches == 0 && audit.delivered == messages }

    func percentile(_ fraction: Double) -> Double {
        guard !latencies.isEmpty else { return 0 }
        return latencies[min(latencies.count - 1, Int(Double(latencies.count) * fraction))]
    }

    func summary(relays: Int, store: String, published: String) -> String {
        let seconds = max(elapsed.timeInterval, 0.001)
        return """

            Summary
              messages          \(messages) committed, \(audit.delivered) delivered, \(audit.missing.count) lost
              duplicates        \(audit.duplicates)
              order violations  \(audit.orderViolations)
              payload mismatch  \(payloadMismatches)
              throughput        \(Int(Double(messages) / seconds)) msg/s end to end (\(String(format: "%.2f", seconds)) s, \(relays) relays)
              latency           commit → published p50 \(String(format: "%.1f", percentile(0.5))) ms, p99 \(String(format: "%.1f", percentile(0.99))) ms, max \(String(format: "%.1f", latencies.last ?? 0)) ms
              store             \(store)
              published         \(published)
            \(isClean ? "OK: every message arrived once, byte-exact, in per-customer order." : "FAILED: see the figures above.")
            """
    }
}
