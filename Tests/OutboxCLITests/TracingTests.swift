import Foundation
import Hummingbird
import Logging
import Outbox
import OutboxSQLite
import OutboxTestSupport
import OutboxTesting
import Synchronization
import Testing

/// `outbox relay --otlp-endpoint` exporting to a real OTLP/HTTP receiver (a Hummingbird server
/// the test starts, taking `POST /v1/traces` as OTLP JSON): the publish spans arrive as children
/// of the trace captured at enqueue, and the published message carries the publish span's context.
@Suite("Traces over OTLP", .serialized)
struct TracingTests {
    static let receiverPort = 59_318
    static let traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
    static let requestSpanID = "00f067aa0ba902b7"

    @Test func publishSpansReachTheReceiverAsChildrenOfTheEnqueueTrace() async throws {
        let received = Mutex<[Data]>([])
        let router = Router()
        router.post("/v1/traces") { request, _ -> Response in
            let body = try await request.body.collect(upTo: 10_000_000)
            let data = Data(buffer: body)
            received.withLock { $0.append(data) }
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: "{}")))
        }
        var quiet = Logger(label: "otlp-receiver")
        quiet.logLevel = .error
        let receiver = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: Self.receiverPort)), logger: quiet)
        let serving = Task { try await receiver.run() }
        defer { serving.cancel() }

        let folder = try TemporaryFolder()
        let path = folder.path("traced.sqlite")
        let store = try SQLiteOutboxStore(path: path)
        try await store.migrate()
        let traced = OutboxMessage(topic: "orders", key: "c-1", type: "OrderPlaced", text: "{}",
                                   headers: [OutboxHeader("traceparent", "00-\(Self.traceID)-\(Self.requestSpanID)-01")])
        let untraced = OutboxMessage(topic: "orders", key: "c-2", text: "{}")
        try await store.writer.write { db in try store.enqueue([traced, untraced], in: db) }

        let output = folder.path("published.jsonl")
        let relay = try OutboxProcess(["relay", "--store", "sqlite://\(path)", "--output", output,
                                       "--otlp-endpoint", "http://127.0.0.1:\(Self.receiverPort)", "--otlp-protocol", "http/json"])
        defer { relay.signal(SIGKILL) }
        try await waitUntil("both messages are published") {
            ((try? OutboxJSONLine.read(contentsOf: output)) ?? []).count == 2
        }
        relay.signal(SIGTERM)
        #expect(try await relay.wait(timeout: .seconds(30)) == 0)

        var spans: [Span] = []
        try await waitUntil("the receiver has both publish spans", timeout: .seconds(20)) {
            let bodies = received.withLock { $0 }
            spans = Self.spans(in: bodies.compactMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] })
                .filter { $0.name == "send orders" }
            return spans.count == 2
        }
        let child = try #require(spans.first { $0.attributes["messaging.message.id"] == traced.id.uuidString.lowercased() })
        #expect(child.traceID == Self.traceID, "the publish span continues the enqueue's trace")
        #expect(child.parentSpanID == Self.requestSpanID, "the publish span's parent is the span that enqueued")
        #expect(child.kind == "SPAN_KIND_PRODUCER" || child.kind == "4")
        #expect(child.attributes["messaging.system"] == "file")
        #expect(child.attributes["messaging.destination.name"] == "orders")
        #expect(child.attributes["messaging.operation.type"] == "send")
        #expect(child.serviceName == "outbox-relay")
        let root = try #require(spans.first { $0.attributes["messaging.message.id"] == untraced.id.uuidString.lowercased() })
        #expect(root.parentSpanID == nil && root.traceID != Self.traceID, "a message without a trace starts its own")

        let lines = try OutboxJSONLine.read(contentsOf: output)
        let line = try #require(lines.first { $0.id == traced.id })
        let traceparents = line.headers.filter { $0.name == "traceparent" }.map(\.value)
        #expect(traceparents == ["00-\(Self.traceID)-\(child.spanID)-01"], "the broker message carries the publish span's context: \(traceparents)")
    }

    @Test func aBadEndpointIsOneSentence() async throws {
        for (arguments, expected) in [
            (["--otlp-endpoint", "127.0.0.1:4318"], "--otlp-endpoint must be an http:// or https:// URL"),
            (["--otlp-endpoint", "http://user:secret@collector:4318"], "--otlp-endpoint must be an http:// or https:// URL"),
            (["--otlp-endpoint", "http://127.0.0.1:4318", "--otlp-protocol", "grpc"], "--otlp-protocol must be http/protobuf or http/json"),
        ] {
            let result = try await OutboxProcess.run(["relay", "--output", "-"] + arguments)
            #expect(result.status != 0 && result.error.contains(expected), "\(result.error)")
            #expect(!result.error.contains("secret"))
        }
    }

    struct Span {
        var name: String
        var traceID: String
        var spanID: String
        var parentSpanID: String?
        var kind: String
        var attributes: [String: String]
        var serviceName: String?
    }

    /// The spans of OTLP JSON export requests. Ids may come hex-encoded (as the OTLP JSON mapping
    /// says) or base64-encoded (protobuf's JSON default); both are read as hex.
    static func spans(in requests: [[String: Any]]) -> [Span] {
        func attributes(_ list: Any?) -> [String: String] {
            var result: [String: String] = [:]
            for attribute in (list as? [[String: Any]]) ?? [] {
                guard let key = attribute["key"] as? String, let value = attribute["value"] as? [String: Any] else { continue }
                result[key] = (value["stringValue"] as? String) ?? value["intValue"].map { "\($0)" }
            }
            return result
        }
        func hex(_ text: Any?) -> String? {
            guard let text = text as? String, !text.isEmpty else { return nil }
            if text.count == 32 || text.count == 16, text.allSatisfy(\.isHexDigit) { return text.lowercased() }
            return Data(base64Encoded: text).map { $0.map { String(format: "%02x", $0) }.joined() }
        }
        var spans: [Span] = []
        for request in requests {
            for resourceSpans in (request["resourceSpans"] as? [[String: Any]]) ?? [] {
                let resource = attributes((resourceSpans["resource"] as? [String: Any])?["attributes"])
                for scope in (resourceSpans["scopeSpans"] as? [[String: Any]]) ?? [] {
                    for span in (scope["spans"] as? [[String: Any]]) ?? [] {
                        spans.append(Span(name: span["name"] as? String ?? "", traceID: hex(span["traceId"]) ?? "", spanID: hex(span["spanId"]) ?? "",
                                          parentSpanID: hex(span["parentSpanId"]), kind: span["kind"].map { "\($0)" } ?? "",
                                          attributes: attributes(span["attributes"]), serviceName: resource["service.name"]))
                    }
                }
            }
        }
        return spans
    }
}
