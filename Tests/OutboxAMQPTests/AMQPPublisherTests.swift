import Foundation
import Outbox
import OutboxAMQP
import OutboxTestSupport
import OutboxTesting
import Testing

/// What the RabbitMQ publisher promises beyond the conformance suite, against the real broker.
@Suite("AMQP publisher", .serialized, .enabled(if: TestServer.rabbitmq.shouldRun, "set OUTBOX_AMQP_URL (scripts/test.sh does)"))
struct AMQPPublisherTests {
    private func records(_ messages: [OutboxMessage]) -> [OutboxRecord] {
        messages.enumerated().map { OutboxRecord(message: $1, sequence: Int64($0), partition: 0) }
    }

    @Test func messagesArriveWithIdTypeKeyAndHeaders() async throws {
        let amqp = try await AMQPUnderTest(url: try TestServer.rabbitmq.requireURL())
        let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        let hostileKey = #"k'"; DROP TABLE outbox_messages;-- é"#
        let messages = [
            OutboxMessage(topic: amqp.topic, key: hostileKey, type: "OrderPlaced", payload: Array("first".utf8),
                          headers: [OutboxHeader("traceparent", traceparent), OutboxHeader("note", "line\r\nbreak: fine in AMQP")]),
            OutboxMessage(topic: amqp.topic, key: nil, payload: []),
            OutboxMessage(topic: amqp.topic, key: "", payload: [0, 255, 0]),
        ]
        let outcomes = try await amqp.amqp.publish(records(messages))
        #expect(outcomes.allSatisfy { $0.isDelivered }, "\(outcomes)")
        let received = try await amqp.consume(count: 3, timeout: .seconds(10))
        let raw = try AMQPAdmin(url: amqp.url).take(from: amqp.queue)
        try await amqp.close()
        #expect(raw.isEmpty, "consume took everything")
        try #require(received.count == 3)
        for (message, read) in zip(messages, received) {
            #expect(read.id == message.id)
            #expect(read.payload == message.payload)
            #expect(read.key == message.key)
        }
    }

    @Test func propertiesAreThoseOfAPersistentMessage() async throws {
        let amqp = try await AMQPUnderTest(url: try TestServer.rabbitmq.requireURL())
        let message = OutboxMessage(topic: amqp.topic, key: "k1", type: "OrderPlaced", text: "x", headers: [OutboxHeader("traceparent", "tp")])
        _ = try await amqp.amqp.publish(records([message]))
        var taken: [AMQPAdmin.ReceivedMessage] = []
        for _ in 0..<50 where taken.isEmpty {
            taken = try AMQPAdmin(url: amqp.url).take(from: amqp.queue)
            if taken.isEmpty { try await Task.sleep(for: .milliseconds(100)) }
        }
        try await amqp.close()
        let read = try #require(taken.first)
        #expect(read.messageID == OutboxUUIDText.string(message.id))
        #expect(read.type == "OrderPlaced")
        #expect(read.routingKey == "k1")
        #expect(read.headers["traceparent"] == "tp")
        #expect(read.headers["outbox-id"] == OutboxUUIDText.string(message.id))
        #expect(read.headers["outbox-key"] == "k1")
    }

    /// Unroutable (no queue bound), too long for AMQP, or unsendable: a permanent failure naming the
    /// reason, holding back only its key; a missing exchange is an outage of its topic only.
    @Test func whatRabbitMQCannotTakeFailsAlone() async throws {
        let amqp = try await AMQPUnderTest(url: try TestServer.rabbitmq.requireURL())
        let messages = [
            OutboxMessage(topic: amqp.nowhere, key: "unroutable", text: "nobody listens"),
            OutboxMessage(topic: amqp.nowhere, key: "unroutable", text: "after it"),
            OutboxMessage(topic: amqp.topic, key: String(repeating: "k", count: 300), text: "long key"),
            OutboxMessage(topic: amqp.topic, key: "nul", text: "x", headers: [OutboxHeader("a", "b\u{0}c")]),
            OutboxMessage(topic: "missing-\(UUID().uuidString.prefix(6))", key: "missing", text: "no such exchange"),
            OutboxMessage(topic: amqp.topic, key: "fine", text: "still delivered"),
        ]
        let outcomes = try await amqp.amqp.publish(records(messages))
        let received = try await amqp.consume(count: 1, timeout: .seconds(10))
        try await amqp.close()
        #expect(outcomes[0].failureReason?.contains("No queue is bound to exchange \(amqp.nowhere)") == true && !outcomes[0].isRetriable,
                "\(outcomes[0])")
        #expect(outcomes[1].isSkipped, "\(outcomes[1])")
        #expect(outcomes[2].failureReason?.contains("255-byte routing key") == true, "\(outcomes[2])")
        #expect(outcomes[3].failureReason?.contains("NUL") == true, "\(outcomes[3])")
        #expect(outcomes[4].isUnavailable, "a missing exchange is an outage: \(outcomes[4])")
        #expect(outcomes[5].isDelivered)
        #expect(received.map(\.payload) == [Array("still delivered".utf8)])
    }

    @Test func badConfigurationIsOneSentence() throws {
        for (configuration, expected) in [
            (AMQPPublisherConfiguration(url: "http://user:hunter2@h:1"), "http://user:***@h:1 is not an AMQP URL"),
            (AMQPPublisherConfiguration(url: "amqp://h", maximumInFlight: 0), "maximum in flight"),
            (AMQPPublisherConfiguration(url: "amqp://h", clientCertificateFile: "c.pem"), "both the AMQP client certificate and its key"),
        ] {
            do {
                _ = try AMQPPublisher(configuration: configuration, logger: OutboxStoreConformance.defaultLogger)
                Issue.record("\(configuration.redactedURL) was accepted")
            } catch let error as OutboxError {
                #expect(error.message.contains(expected), "\(error.message)")
                #expect(!error.message.contains("hunter2"))
            }
        }
    }

    @Test func aWrongPasswordIsOneSentence() async throws {
        let url = try TestServer.rabbitmq.requireURL().replacingOccurrences(of: "guest:guest@", with: "guest:hunter2@")
        let publisher = try AMQPPublisher(configuration: AMQPPublisherConfiguration(url: url, connectTimeout: .seconds(2)),
                                          logger: OutboxStoreConformance.defaultLogger)
        do {
            try await publisher.run()
            Issue.record("the publisher ran with a wrong password")
        } catch let error as OutboxError {
            #expect(error.message.contains("refused the login"), "\(error.message)")
            #expect(!error.message.contains("hunter2"))
        }
    }
}
