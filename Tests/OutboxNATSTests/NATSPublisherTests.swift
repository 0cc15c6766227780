import Foundation
import Outbox
import OutboxNATS
import OutboxTestSupport
import OutboxTesting
import Testing

/// What the NATS publisher promises beyond the conformance suite, against the real server.
@Suite("NATS publisher", .serialized, .enabled(if: TestServer.nats.shouldRun, "set OUTBOX_NATS_URL (scripts/test.sh does)"))
struct NATSPublisherTests {
    private func records(_ messages: [OutboxMessage]) -> [OutboxRecord] {
        messages.enumerated().map { OutboxRecord(message: $1, sequence: Int64($0), partition: 0) }
    }

    @Test func messagesArriveWithKeyTypeHeadersAndTheirIdAsNatsMsgId() async throws {
        let nats = try await NATSUnderTest(url: try TestServer.nats.requireURL())
        let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        let hostileKey = #"k'"; DROP TABLE outbox_messages;-- \ é"#
        let messages = [
            OutboxMessage(topic: nats.topic, key: hostileKey, type: "OrderPlaced", payload: Array("first".utf8),
                          headers: [OutboxHeader("traceparent", traceparent)]),
            OutboxMessage(topic: nats.topic, key: nil, payload: []),
            OutboxMessage(topic: nats.topic, key: "", payload: [0, 255, 0]),
        ]
        let outcomes = try await nats.nats.publish(records(messages))
        #expect(outcomes.allSatisfy { $0.isDelivered }, "\(outcomes)")
        let stored = try NATSStreams(servers: nats.url).read(nats.stream)
        try await nats.close()
        try #require(stored.count == 3)
        for (message, read) in zip(messages, stored) {
            let id = OutboxUUIDText.string(message.id)
            #expect(read.headers["Nats-Msg-Id"] == id)
            #expect(read.headers["outbox-id"] == id)
            // An empty key travels as no key: empty header values are not sent.
            #expect(read.headers["outbox-key"] == message.key.flatMap { $0.isEmpty ? nil : $0 })
            #expect(read.payload == message.payload)
            #expect(read.subject == nats.topic)
        }
        #expect(stored[0].headers["outbox-type"] == "OrderPlaced")
        #expect(stored[0].headers["traceparent"] == traceparent)
    }

    /// G3 on NATS: a relay that crashed after publishing publishes again; the stream keeps one copy.
    @Test func aMessagePublishedTwiceIsStoredOnce() async throws {
        let nats = try await NATSUnderTest(url: try TestServer.nats.requireURL())
        let batch = records((0..<20).map { OutboxMessage(topic: nats.topic, key: "k\($0 % 4)", text: "m\($0)") })
        let first = try await nats.nats.publish(batch)
        let again = try await nats.nats.publish(batch)
        let state = try NATSStreams(servers: nats.url).state(of: nats.stream)
        try await nats.close()
        #expect(first.allSatisfy { $0.isDelivered } && again.allSatisfy { $0.isDelivered }, "\(first) \(again)")
        #expect(state.messages == 20, "the stream holds \(state.messages) messages for 20 published twice")
    }

    /// Too large for the server or the stream, or not sendable as NATS headers and subjects: a
    /// permanent failure naming the reason (so the relay dead-letters it), holding back only its key.
    @Test func whatNATSCannotCarryFailsPermanentlyAndAlone() async throws {
        let nats = try await NATSUnderTest(url: try TestServer.nats.requireURL())
        let messages = [
            OutboxMessage(topic: nats.topic, key: "big", payload: Array(repeating: 1, count: 2_000_000)),
            OutboxMessage(topic: nats.topic, key: "big", text: "after the big one"),
            OutboxMessage(topic: nats.topic, key: "stream-limit", payload: Array(repeating: 2, count: 150_000)),
            OutboxMessage(topic: nats.topic, key: "injected", text: "x", headers: [OutboxHeader("a", "b\r\nNats-Msg-Id: forged")]),
            OutboxMessage(topic: nats.topic, key: "line\nbreak", text: "x"),
            OutboxMessage(topic: nats.topic, key: "header-name", text: "x", headers: [OutboxHeader("bad name", "v")]),
            OutboxMessage(topic: "orders'; DROP TABLE x", key: "subject", text: "x"),
            OutboxMessage(topic: "orders.>", key: "wildcard", text: "x"),
            OutboxMessage(topic: nats.topic, key: "fine", text: "still delivered"),
        ]
        let outcomes = try await nats.nats.publish(records(messages))
        let stored = try NATSStreams(servers: nats.url).read(nats.stream)
        try await nats.close()
        #expect(outcomes[0].failureReason?.contains("max_payload") == true && !outcomes[0].isRetriable, "\(outcomes[0])")
        #expect(outcomes[1].isSkipped, "the rest of the key waits behind its failed message: \(outcomes[1])")
        #expect(outcomes[2].failureReason?.contains("maximum message size") == true && !outcomes[2].isRetriable, "\(outcomes[2])")
        for index in 3...7 {
            #expect(outcomes[index].failureReason != nil && !outcomes[index].isRetriable, "\(messages[index].key ?? ""): \(outcomes[index])")
        }
        #expect(outcomes[8].isDelivered)
        #expect(stored.count == 1 && stored.first?.payload == Array("still delivered".utf8), "\(stored.map(\.headers))")
    }

    /// No stream stores the subject: an outage of that topic, not the message's fault.
    @Test func aSubjectNoStreamStoresIsUnavailable() async throws {
        let nats = try await NATSUnderTest(url: try TestServer.nats.requireURL())
        let outcomes = try await nats.nats.publish(records([OutboxMessage(topic: "nowhere.\(UUID().uuidString.prefix(6))", text: "x")]))
        try await nats.close()
        #expect(outcomes.first?.isUnavailable == true, "\(outcomes)")
    }

    @Test func aSubjectPrefixIsPrepended() async throws {
        let url = try TestServer.nats.requireURL()
        let stream = "PREFIXED_\(UUID().uuidString.prefix(6))"
        let streams = try NATSStreams(servers: url)
        try streams.createStream(stream, subjects: ["app.>"])
        defer { try? streams.deleteStream(stream) }
        let publisher = try NATSPublisher(configuration: NATSPublisherConfiguration(servers: url, subjectPrefix: "app."),
                                          logger: OutboxStoreConformance.defaultLogger)
        let running = Task { try await publisher.run() }
        defer { running.cancel() }
        let outcomes = try await publisher.publish(records([OutboxMessage(topic: "orders", text: "x")]))
        #expect(outcomes.first?.isDelivered == true, "\(outcomes)")
        let stored = try streams.read(stream)
        #expect(stored.first?.subject == "app.orders")
    }

    @Test func badConfigurationIsOneSentence() throws {
        for (configuration, expected) in [
            (NATSPublisherConfiguration(servers: ""), "Give the NATS servers"),
            (NATSPublisherConfiguration(servers: "http://user:hunter2@h:1"), "http://user:***@h:1 is not a NATS server list"),
            (NATSPublisherConfiguration(servers: "nats://h:1", maximumInFlight: 0), "maximum in flight"),
        ] {
            #expect(throws: OutboxError.self) { try NATSPublisher(configuration: configuration, logger: OutboxStoreConformance.defaultLogger) }
            do {
                _ = try NATSPublisher(configuration: configuration, logger: OutboxStoreConformance.defaultLogger)
            } catch let error as OutboxError {
                #expect(error.message.contains(expected), "\(error.message)")
                #expect(!error.message.contains("hunter2"))
            }
        }
    }
}
