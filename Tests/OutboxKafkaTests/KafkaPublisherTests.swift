import Foundation
import Outbox
import OutboxKafka
import OutboxTesting
import Testing

@Suite("Kafka publisher")
struct KafkaPublisherTests {
    @Test func everyMessageArrivesWithItsKeyHeadersAndIdOnTheJavaPartition() async throws {
        let kafka = try await KafkaTestEnvironment()
        let records = kafka.records(2_000, keys: 50)
        let outcomes = try await kafka.publisher.publish(records)
        #expect(outcomes.allSatisfy { $0.isDelivered }, "\(outcomes.filter { !$0.isDelivered }.prefix(3))")
        let received = try await kafka.readBack(records.count)
        try await kafka.stop()
        #expect(received.count == records.count)
        let byID = Dictionary(received.compactMap { message in message.outboxID.map { ($0, message) } }, uniquingKeysWith: { first, _ in first })
        for record in records {
            let message = try #require(byID[record.message.id])
            #expect(message.key == record.message.key.map { Array($0.utf8) })
            #expect(message.value == record.message.payload)
            #expect(message.headers.first { $0.name == "outbox-type" }?.value == "OrderPlaced")
            #expect(message.headers.first { $0.name == "traceparent" }?.value == record.message.headers[0].value)
            #expect(message.partition == javaMurmur2Partition(message.key!, partitions: 6), "key \(record.message.key!) on the Java client's partition")
        }
        // Per-key order within the partition.
        for key in Set(records.compactMap(\.message.key)) {
            let sent = records.filter { $0.message.key == key }.map(\.message.id)
            let got = received.filter { $0.key == Array(key.utf8) }.sorted { $0.offset < $1.offset }.compactMap(\.outboxID)
            #expect(got == sent, "order of \(key)")
        }
    }

    @Test func keylessAndEmptyMessagesKeepTheirShape() async throws {
        let kafka = try await KafkaTestEnvironment()
        let messages = [
            OutboxMessage(topic: kafka.topic, key: nil, payload: []),
            OutboxMessage(topic: kafka.topic, key: "", payload: [0, 255, 0]),
        ]
        let outcomes = try await kafka.publisher.publish(messages.enumerated().map { OutboxRecord(message: $1, sequence: Int64($0), partition: 0) })
        #expect(outcomes.allSatisfy { $0.isDelivered })
        let received = try await kafka.readBack(2)
        try await kafka.stop()
        let keyless = try #require(received.first { $0.outboxID == messages[0].id })
        #expect(keyless.key == nil && keyless.value.isEmpty)
        let emptyKey = try #require(received.first { $0.outboxID == messages[1].id })
        #expect(emptyKey.key == [] && emptyKey.value == [0, 255, 0])
    }
}

@Suite("Kafka publisher errors")
struct KafkaPublisherErrorTests {
    @Test func anUnreachableBrokerAtStartIsAClearError() async throws {
        let publisher = try KafkaPublisher(
            configuration: KafkaPublisherConfiguration(bootstrapServers: "127.0.0.1:1", brokerWaitAtStartup: .milliseconds(800)),
            logger: OutboxStoreConformance.defaultLogger)
        let error = await #expect(throws: KafkaError.self) { try await publisher.run() }
        #expect(error?.description.contains("No Kafka broker answered at 127.0.0.1:1") == true)
    }

    @Test func aRefusedSettingIsNamedWithoutItsValue() throws {
        let error = #expect(throws: KafkaError.self) {
            try KafkaPublisher(
                configuration: KafkaPublisherConfiguration(bootstrapServers: "127.0.0.1:1", properties: ["sasl.pasword": "hunter2"]),
                logger: OutboxStoreConformance.defaultLogger)
        }
        #expect(error?.description.contains("sasl.pasword") == true)
        #expect(error?.description.contains("hunter2") == false)
    }

    /// The mock keeps about 5 MB per partition and drops older messages: a reader started late
    /// names the offsets it could not read, and a follower started before the writes reads them all.
    @Test func readersNameOffsetsTheBrokerDropped() async throws {
        let kafka = try await KafkaTestEnvironment(brokers: 1, partitions: 1)
        let follower = try KafkaTopicFollower(bootstrapServers: kafka.cluster.bootstrapServers, topic: kafka.topic)
        let records = kafka.records(120, keys: 1, payloadSize: 100_000)
        for start in stride(from: 0, to: records.count, by: 10) {
            let outcomes = try await kafka.publisher.publish(Array(records[start..<start + 10]))
            #expect(outcomes.allSatisfy { $0.isDelivered })
            // The follower keeps up, as it does with a chaos run's rate.
            try await waitUntil("the follower read what was published", timeout: .seconds(20)) { follower.distinctCount >= start + 10 }
        }
        let late = try await KafkaTopicReader(bootstrapServers: kafka.cluster.bootstrapServers)
            .readReporting(topic: kafka.topic, count: records.count, timeout: .seconds(5))
        let early = try await follower.finish(count: records.count, timeout: .seconds(30))
        try await kafka.stop()
        #expect(late.trimmedOffsets > 0, "12 MB on one partition: the mock dropped the oldest")
        #expect(Int64(late.messages.count) + late.trimmedOffsets == Int64(records.count), "every offset is read or named trimmed")
        #expect(early.trimmedOffsets == 0 && Set(early.messages.compactMap(\.outboxID)).count == records.count)
    }

    /// The producer's own size error names the setting to raise.
    @Test func aTooLargeMessageNamesTheSettingToRaise() async throws {
        let kafka = try await KafkaTestEnvironment(properties: ["message.max.bytes": "10000"])
        let large = OutboxRecord(message: OutboxMessage(topic: kafka.topic, key: "k", payload: Array(repeating: 1, count: 20_000)), sequence: 1, partition: 0)
        let outcomes = try await kafka.publisher.publish([large])
        try await kafka.stop()
        #expect(outcomes.first?.isRetriable == false)
        #expect(outcomes.first?.failureReason?.contains("-X message.max.bytes") == true, "\(outcomes)")
    }

    @Test func publishingToAStoppedPublisherSaysSo() async throws {
        let kafka = try await KafkaTestEnvironment()
        _ = try await kafka.publisher.publish([])
        try await kafka.stop()
        await #expect(throws: OutboxError.self) { try await kafka.publisher.publish(kafka.records(1)) }
    }
}

@Suite("Kafka publisher recovery")
struct KafkaPublisherRecoveryTests {
    @Test func aFatalErrorRebuildsTheProducerAndFailsWhatItHeld() async throws {
        let kafka = try await KafkaTestEnvironment()
        _ = try await kafka.publisher.publish(kafka.records(10))
        kafka.cluster.failNextProduceRequests(with: [.outOfOrderSequenceNumber])
        let hit = try await kafka.publisher.publish(kafka.records(200, keys: 5))
        #expect(hit.contains { !$0.isDelivered }, "the fatal error fails part of the batch")
        #expect(!hit.contains { $0.failureReason != nil && !$0.isRetriable }, "what a fatal error takes down is retriable")
        try await waitUntil("the producer is rebuilt") { kafka.publisher.producerRebuilds == 1 }
        let after = try await kafka.publisher.publish(kafka.records(200, keys: 5))
        #expect(after.allSatisfy { $0.isDelivered }, "the rebuilt producer delivers")
        try await kafka.stop()
    }
}
