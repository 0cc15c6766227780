import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Outbox
import OutboxSQLite
import OutboxTestSupport
import OutboxTesting
import Testing

/// `outbox relay --metrics-address` scraped by a real Prometheus server (Debian's, started by
/// `scripts/start-prometheus.sh`), with the README's sample alert rules loaded: the values read
/// back through Prometheus's HTTP API are the store's, and the alerts fire on a stuck relay.
@Suite("Prometheus", .serialized)
struct PrometheusTests {
    static let metricsPort = 59_464
    static let prometheusPort = 59_090

    @Test func prometheusScrapesTheRelaysGaugesAndFiresTheSampleAlerts() async throws {
        let folder = try TemporaryFolder()
        let path = folder.path("metrics.sqlite")
        let store = try SQLiteOutboxStore(path: path)
        try await store.migrate()
        // Five messages waiting for a retry an hour from now (the relay cannot publish them yet),
        // the first created an hour ago, and one dead letter. Keys and payloads must never appear
        // in the metrics.
        let old = OutboxMessage(topic: "orders", key: "customer-secret-key", type: "OrderPlaced",
                                payload: Array("payload-secret".utf8), createdAt: Date().addingTimeInterval(-3_600))
        let waiting = [old] + (1..<5).map { OutboxMessage(topic: "orders", key: "customer-\($0)", text: "payload-secret \($0)") }
        let poison = OutboxMessage(topic: "orders", key: "poison", text: "payload-secret poison")
        try await store.writer.write { db in try store.enqueue([poison] + waiting, in: db) }
        let grant = try await store.heartbeat(OutboxHeartbeat(relayID: "seed", leaseDuration: .seconds(30)))
        let claimed = try await store.claim(partitions: grant.owned.sorted(), limit: 10, now: Date())
        try #require(claimed.count == 6)
        _ = try await store.acknowledge(OutboxAcknowledgement(
            relayID: "seed",
            retries: claimed.dropFirst().map {
                .init(sequence: $0.sequence, partition: $0.partition, availableAt: Date().addingTimeInterval(3_600), error: "broker timed out")
            },
            deadLetters: [.init(sequence: claimed[0].sequence, partition: claimed[0].partition, error: "rejected")]))
        try await store.resign(relayID: "seed")

        let address = "127.0.0.1:\(Self.metricsPort)"
        let relay = try OutboxProcess(["relay", "--store", "sqlite://\(path)", "--output", folder.path("published.jsonl"),
                                       "--metrics-address", address, "--backlog-gauge-seconds", "0.5"])
        defer { relay.signal(SIGKILL) }
        var text = ""
        try await waitUntil("the relay serves its metrics with the backlog read", timeout: .seconds(30)) {
            if let status = relay.exitStatus { throw ConformanceFailure("the relay exited with status \(status)") }
            text = (try? await Self.get("http://\(address)/metrics")) ?? ""
            return text.contains("outbox_pending_messages 5")
        }
        #expect(text.contains("outbox_dead_letters 1"), "\(text)")
        #expect(!text.contains("secret"), "keys and payloads never appear in the metrics")

        let prometheus = try await ProjectScript.run(
            "start-prometheus.sh", arguments: [address, "docs/prometheus/outbox-alerts.yml"],
            environment: ["OUTBOX_PROMETHEUS_PORT": "\(Self.prometheusPort)"])
        defer { Self.stopPrometheus() }
        var values: [String: Double] = [:]
        try await waitUntil("Prometheus has scraped every gauge", timeout: .seconds(60)) {
            for name in ["outbox_pending_messages", "outbox_dead_letters", "outbox_oldest_pending_age_seconds", "outbox_live_relays",
                         "outbox_partitions", "outbox_partitions_owned", "outbox_publisher_in_flight_messages"] {
                guard let value = try await Self.query(prometheus, name) else { return false }
                values[name] = value
            }
            return true
        }
        #expect(values["outbox_pending_messages"] == 5)
        #expect(values["outbox_dead_letters"] == 1)
        #expect((3_590...3_700).contains(values["outbox_oldest_pending_age_seconds"] ?? 0), "\(values)")
        #expect(values["outbox_live_relays"] == 1)
        #expect(values["outbox_partitions_owned"] == values["outbox_partitions"] && (values["outbox_partitions"] ?? 0) > 0)
        let claims = try await Self.query(prometheus, #"outbox_store_call_duration_seconds_count{operation="claim"}"#)
        #expect((claims ?? 0) > 0, "store calls are timed")

        try await waitUntil("the sample alerts fire on the stuck backlog", timeout: .seconds(60)) {
            let alerts = try await Self.get("\(prometheus)/api/v1/alerts")
            return alerts.contains(#""alertname":"OutboxMessagesWaiting""#) && alerts.contains(#""alertname":"OutboxDeadLetters""#)
        }
        let alerts = try await Self.get("\(prometheus)/api/v1/alerts")
        #expect(!alerts.contains(#""alertname":"OutboxPartitionsWithoutRelay""#), "every partition has its relay: \(alerts)")
        relay.signal(SIGTERM)
        let status = try await relay.wait(timeout: .seconds(30))
        let log = String(decoding: relay.standardError.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(status == 0 && !log.contains(" error "), "\(log.split(separator: "\n").suffix(5).joined(separator: "\n"))")
    }

    @Test func aBadOrTakenMetricsAddressIsOneSentence() async throws {
        let bad = try await OutboxProcess.run(["relay", "--store", "sqlite:///tmp/x.sqlite", "--output", "/dev/null", "--metrics-address", "9464"])
        #expect(bad.status != 0)
        #expect(bad.error.contains("--metrics-address: The listen address '9464' has no port"), "\(bad.error)")

        let folder = try TemporaryFolder()
        let store = try SQLiteOutboxStore(path: folder.path("taken.sqlite"))
        try await store.migrate()
        let holder = try OutboxProcess(["relay", "--store", "sqlite://\(folder.path("taken.sqlite"))", "--output", "/dev/null",
                                        "--metrics-address", "127.0.0.1:\(Self.metricsPort + 1)"])
        defer { holder.signal(SIGKILL) }
        try await waitUntil("the first relay serves metrics") {
            (try? await Self.get("http://127.0.0.1:\(Self.metricsPort + 1)/metrics")) != nil
        }
        let taken = try await OutboxProcess.run(["relay", "--store", "sqlite://\(folder.path("taken.sqlite"))", "--output", "/dev/null",
                                                 "--metrics-address", "127.0.0.1:\(Self.metricsPort + 1)"])
        #expect(taken.status != 0)
        #expect(taken.error.contains("could not listen on 127.0.0.1:\(Self.metricsPort + 1)"), "\(taken.error)")
    }

    /// One instant value from Prometheus's query API, or `nil` while it has none.
    static func query(_ prometheus: String, _ expression: String) async throws -> Double? {
        var components = URLComponents(string: "\(prometheus)/api/v1/query")!
        components.queryItems = [URLQueryItem(name: "query", value: expression)]
        let body = try await get(components.url!.absoluteString)
        guard let json = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any],
              let data = json["data"] as? [String: Any], let result = data["result"] as? [[String: Any]],
              let value = result.first?["value"] as? [Any], value.count == 2, let text = value[1] as? String
        else { return nil }
        return Double(text)
    }

    static func get(_ url: String) async throws -> String {
        let (data, response) = try await URLSession.shared.data(from: URL(string: url)!)
        guard (response as? HTTPURLResponse)?.statusCode == 200 else {
            throw ConformanceFailure("GET \(url) answered \((response as? HTTPURLResponse)?.statusCode ?? 0)")
        }
        return String(decoding: data, as: UTF8.self)
    }

    static func stopPrometheus() {
        let pidFile = "\(FileManager.default.currentDirectoryPath)/.test-servers/prometheus-\(prometheusPort)/server.pid"
        if let text = try? String(contentsOfFile: pidFile, encoding: .utf8), let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
            kill(pid, SIGTERM)
        }
    }
}
