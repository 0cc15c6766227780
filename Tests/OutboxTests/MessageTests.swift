import Foundation
import Instrumentation
import Outbox
import OutboxTesting
import ServiceContextModule
import Testing

@Suite struct MessageTests {
    @Test func idsAreVersion7AndIncreasing() {
        let ids = (0..<10_000).map { _ in OutboxMessageID.make() }
        #expect(ids.allSatisfy { $0.uuidString.dropFirst(14).first == "7" })
        #expect(ids.allSatisfy { "89AB".contains($0.uuidString.dropFirst(19).first!) })
        let strings = ids.map { $0.uuidString }
        #expect(strings == strings.sorted(), "ids made in one process sort in creation order")
        #expect(Set(ids).count == ids.count)
    }

    @Test func idsCarryTheirMillisecond() {
        let before = UInt64(Date().timeIntervalSince1970 * 1000)
        let id = OutboxMessageID.make()
        let after = UInt64(Date().timeIntervalSince1970 * 1000)
        let hex = id.uuidString.replacingOccurrences(of: "-", with: "").prefix(12)
        let milliseconds = UInt64(hex, radix: 16)!
        #expect(milliseconds >= before && milliseconds <= after + 1)
    }

    @Test func validationNamesTheFieldToFix() {
        #expect(throws: OutboxError.self) { try OutboxMessage(topic: "", text: "x").validate() }
        do {
            try OutboxMessage(topic: "t", payload: Array(repeating: 0, count: 11)).validate(limits: .init(maximumPayloadBytes: 10))
            Issue.record("an oversized payload must be rejected")
        } catch let error as OutboxError {
            #expect(error.code == .invalidMessage)
            #expect(error.description.contains("payload"))
        } catch {
            Issue.record("unexpected error \(error)")
        }
        #expect(throws: OutboxError.self) {
            try OutboxMessage(topic: "t", text: "x", headers: [OutboxHeader("", "v")]).validate()
        }
        #expect(throws: OutboxError.self) { try OutboxMessage(topic: "t", key: "a\u{0}b", text: "x").validate() }
        #expect(throws: OutboxError.self) { try OutboxMessage(topic: "t", text: "x", headers: [OutboxHeader("h", "\u{0}")]).validate() }
        #expect(throws: Never.self) { try OutboxMessage(topic: "t", payload: [0, 0, 0]).validate() }
    }

    /// By default a message Kafka's default message.max.bytes would refuse fails at enqueue, in the
    /// application's transaction, with the setting to raise; the largest one the limits allow fits.
    @Test func theDefaultSizeLimitIsWhatTheDefaultPublisherAccepts() throws {
        let error = #expect(throws: OutboxError.self) { try OutboxMessage(topic: "t", payload: Array(repeating: 1, count: 1_000_000)).validate() }
        #expect(error?.description.contains("maximumPayloadBytes") == true && error?.description.contains("message.max.bytes") == true)
        let limits = OutboxMessageLimits()
        let largest = limits.maximumPayloadBytes + limits.maximumKeyBytes + limits.maximumTypeBytes + limits.maximumTopicBytes
            + limits.maximumHeaderBytes + "outbox-id".utf8.count + 36 + "outbox-type".utf8.count
        #expect(largest < 1_000_000 - 1_000, "the largest message the limits allow fits message.max.bytes with room for framing: \(largest)")
        let store = InMemoryOutboxStore()
        #expect(throws: OutboxError.self) {
            try store.withTransaction { try $0.enqueue(OutboxMessage(topic: "t", payload: Array(repeating: 1, count: 1_100_000))) }
        }
    }

    @Test func reservedHeadersAreRefusedAtEnqueue() {
        for name in ["outbox-id", "Outbox-Type", "OUTBOX-ID", "outbox-anything", "Nats-Msg-Id"] {
            let error = #expect(throws: OutboxError.self) {
                try OutboxMessage(topic: "t", text: "x", headers: [OutboxHeader(name, "spoofed")]).validate()
            }
            #expect(error?.code == .invalidMessage)
            #expect(error?.description.contains("'\(name)' is reserved") == true, "\(name)")
            #expect(error?.description.contains("spoofed") == false, "the value stays out of the error")
        }
        #expect(throws: Never.self) {
            try OutboxMessage(topic: "t", text: "x", headers: [OutboxHeader("outbox", "v"), OutboxHeader("x-outbox-id", "v")]).validate()
        }
    }

    @Test func failureReasonsAreCutAndCleanedForEveryStore() {
        #expect(OutboxFailureReason.clean("Kafka: MSG_SIZE_TOO_LARGE") == "Kafka: MSG_SIZE_TOO_LARGE")
        #expect(OutboxFailureReason.clean("a\u{0}b\r\nc\u{7}") == "a b c ")
        let huge = OutboxFailureReason.clean(String(repeating: "é\u{0}", count: 600_000))
        #expect(huge.utf8.count <= OutboxFailureReason.maximumBytes)
        #expect(huge.hasSuffix("…") && !huge.utf8.contains(0))
        let exact = String(repeating: "a", count: OutboxFailureReason.maximumBytes)
        #expect(OutboxFailureReason.clean(exact) == exact, "a reason that fits is kept whole")
    }

    @Test func partitionOfAKeyIsStable() {
        let id = OutboxMessageID.make()
        // Fixed values: changing the hash would move keys between partitions of existing stores.
        #expect(OutboxPartitioning.partition(key: "order-42", id: id, partitionCount: 32) == OutboxPartitioning.partition(key: "order-42", id: OutboxMessageID.make(), partitionCount: 32))
        #expect(OutboxPartitioning.partition(key: "a", id: id, partitionCount: 1_000_003) == Int(UInt64(0xaf63_dc4c_8601_ec8c) % 1_000_003))
        let spread = Set((0..<1000).map { OutboxPartitioning.partition(key: "key-\($0)", id: id, partitionCount: 16) })
        #expect(spread.count == 16)
    }

    @Test func enqueueCapturesTheTraceContext() {
        var context = ServiceContext.topLevel
        context[TraceKey.self] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        let message = OutboxMessage(topic: "t", text: "x", headers: [OutboxHeader("app", "1")])
            .capturingTraceContext(context, instrument: TraceparentInstrument())
        #expect(message.headers == [OutboxHeader("app", "1"),
                                    OutboxHeader("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")])
        let untouched = OutboxMessage(topic: "t", text: "x").capturingTraceContext(.topLevel, instrument: TraceparentInstrument())
        #expect(untouched.headers.isEmpty)
    }

    @Test func retryBackoffGrowsAndIsCapped() {
        let policy = OutboxRetryPolicy(initialBackoff: .milliseconds(100), maximumBackoff: .seconds(1), jitter: 0)
        #expect(policy.backoff(afterAttempts: 1) == .milliseconds(100))
        #expect(policy.backoff(afterAttempts: 3) == .milliseconds(400))
        #expect(policy.backoff(afterAttempts: 30) == .seconds(1))
        let jittered = OutboxRetryPolicy(initialBackoff: .milliseconds(100), jitter: 0.5)
        let delays = Set((0..<50).map { _ in jittered.backoff(afterAttempts: 1) })
        #expect(delays.count > 1 && delays.allSatisfy { $0 >= .milliseconds(50) && $0 <= .milliseconds(150) })
        #expect(policy.shouldDeadLetter(attempts: 3, isRetriable: false))
        #expect(!policy.shouldDeadLetter(attempts: 3, isRetriable: true))
        #expect(policy.shouldDeadLetter(attempts: 10, isRetriable: true))
    }

    @Test func auditFindsLossDuplicatesAndReordering() {
        let ids = (0..<4).map { _ in UUID() }
        let clean = DeliveryAudit(committedByKey: ["k": ids], deliveredIDs: ids + [ids[1]])
        #expect(clean.isClean && clean.duplicates == 1)
        let reordered = DeliveryAudit(committedByKey: ["k": ids], deliveredIDs: [ids[0], ids[2], ids[1], ids[3]])
        #expect(reordered.orderViolations > 0)
        let lost = DeliveryAudit(committedByKey: ["k": ids], deliveredIDs: [ids[0], ids[1], ids[3]])
        #expect(lost.missing == [ids[2]] && lost.orderViolations == 0, "a missing predecessor is loss, not an order violation")
        let late = DeliveryAudit(committedByKey: ["k": ids], deliveredIDs: [ids[0], ids[1], ids[3], ids[2]])
        #expect(late.isClean == false && late.orderViolations == 1 && late.missing.isEmpty, "a message arriving after a later one is")
        let dead = DeliveryAudit(committedByKey: ["k": ids], deliveredIDs: [ids[0], ids[1], ids[3]], deadLettered: [ids[2]])
        #expect(dead.isClean)
    }
}

private enum TraceKey: ServiceContextKey {
    typealias Value = String
}

private struct TraceparentInstrument: Instrument {
    func extract<Carrier, Extract: Extractor>(_ carrier: Carrier, into context: inout ServiceContext, using extractor: Extract) where Extract.Carrier == Carrier {}

    func inject<Carrier, Inject: Injector>(_ context: ServiceContext, into carrier: inout Carrier, using injector: Inject) where Inject.Carrier == Carrier {
        if let traceparent = context[TraceKey.self] { injector.inject(traceparent, forKey: "traceparent", into: &carrier) }
    }
}

