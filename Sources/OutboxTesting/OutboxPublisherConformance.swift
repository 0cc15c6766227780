import Foundation
public import Logging
import Outbox

/// The outbox's guarantees as seen through one publisher: each check runs a real
/// ``OutboxRelay`` over an ``InMemoryOutboxStore`` against the broker under test, makes the broker
/// misbehave, and audits what a consumer reads back.
public struct OutboxPublisherConformance: Sendable {
    /// One behaviour, checked end to end.
    public enum Check: String, CaseIterable, Sendable, CustomStringConvertible {
        /// Thousands of keyed messages arrive, once each, in per-key order, byte-exact.
        case deliversEverythingInKeyOrder
        /// A partition leader goes down mid-stream and leadership moves: nothing lost, order kept.
        case survivesPartitionLeaderDown
        /// Retriable produce errors are retried: nothing lost, order kept.
        case retriesRetriableErrors
        /// Messages the broker never takes are dead-lettered after the retry limit; the rest flow.
        case deadLettersPermanentFailures
        /// A fatal producer error: the producer is rebuilt and nothing is lost.
        case rebuildsAfterFatalError
        /// Graceful shutdown during an outage acknowledges nothing the broker did not take.
        case shutdownDuringOutageAcknowledgesNothing
        /// G2/G4: an outage longer than the delivery timeout times the retry limit uses up no
        /// attempts; once the broker is back everything arrives, in per-key order, nothing dead.
        case longOutageUsesNoAttempts

        public var description: String { rawValue }
    }

    let harness: any OutboxPublisherHarness
    let logger: Logger

    /// Creates the suite for one broker.
    public init(harness: any OutboxPublisherHarness, logger: Logger = OutboxStoreConformance.defaultLogger) {
        self.harness = harness
        self.logger = logger
    }

    /// Runs one check on a fresh broker.
    public func run(_ check: Check) async throws {
        let broker = try await harness.makeEnvironment()
        do {
            switch check {
            case .deliversEverythingInKeyOrder: try await deliversEverythingInKeyOrder(broker)
            case .survivesPartitionLeaderDown: try await survivesPartitionLeaderDown(broker)
            case .retriesRetriableErrors: try await retriesRetriableErrors(broker)
            case .deadLettersPermanentFailures: try await deadLettersPermanentFailures(broker)
            case .rebuildsAfterFatalError: try await rebuildsAfterFatalError(broker)
            case .shutdownDuringOutageAcknowledgesNothing: try await shutdownDuringOutageAcknowledgesNothing(broker)
            case .longOutageUsesNoAttempts: try await longOutageUsesNoAttempts(broker)
            }
        } catch {
            try? await broker.close()
            throw error
        }
        try await broker.close()
    }

    // MARK: - Helpers

    private func expect(_ condition: Bool, _ message: @autoclosure () -> String) throws {
        if !condition { throw ConformanceFailure("[\(harness.name)] \(message())") }
    }

    private func messages(_ broker: any OutboxPublisherUnderTest, keys: Int, perKey: Int) -> [[OutboxMessage]] {
        (0..<keys).map { key in
            (0..<perKey).map { index in
                OutboxMessage(topic: broker.topic, key: "key-\(key)", type: "OrderPlaced", text: "key-\(key) #\(index) " + String(repeating: "x", count: 64))
            }
        }
    }

    private func enqueue(_ store: InMemoryOutboxStore, _ perKey: [[OutboxMessage]]) async throws {
        let longest = perKey.map(\.count).max() ?? 0
        var flat: [OutboxMessage] = []
        for index in 0..<longest {
            for messages in perKey where index < messages.count { flat.append(messages[index]) }
        }
        for start in stride(from: 0, to: flat.count, by: 100) {
            try await store.enqueueCommitted(Array(flat[start..<min(start + 100, flat.count)]))
        }
    }

    private func relay(_ store: InMemoryOutboxStore, _ broker: any OutboxPublisherUnderTest,
                       _ configuration: OutboxRelayConfiguration = .forTesting(batchSize: 500)) -> RunningRelay {
        RunningRelay(OutboxRelay(store: store, publisher: broker.publisher, configuration: configuration, logger: logger), logger: logger)
    }

    private func audit(_ perKey: [[OutboxMessage]], _ consumed: [OutboxConsumedMessage], deadLettered: Set<UUID> = []) throws -> DeliveryAudit {
        var byKey: [String?: [UUID]] = [:]
        var payloads: [UUID: [UInt8]] = [:]
        for messages in perKey {
            for message in messages {
                byKey[message.key, default: []].append(message.id)
                payloads[message.id] = message.payload
            }
        }
        for message in consumed {
            try expect(payloads[message.id].map { $0 == message.payload } ?? true, "a payload changed on the way")
        }
        return DeliveryAudit(committedByKey: byKey, deliveredIDs: consumed.map(\.id), deadLettered: deadLettered)
    }

    private func drain(_ store: InMemoryOutboxStore, expectDead: Int = 0, timeout: Duration = .seconds(90)) async throws {
        try await waitUntil("the outbox drains", timeout: timeout) {
            let status = try await store.status(now: Date())
            return status.pending == 0 && status.dead == expectDead
        }
    }

    // MARK: - Checks

    func deliversEverythingInKeyOrder(_ broker: any OutboxPublisherUnderTest) async throws {
        let store = InMemoryOutboxStore()
        let perKey = messages(broker, keys: 50, perKey: 100)
        try await enqueue(store, perKey)
        let running = relay(store, broker)
        try await drain(store)
        try await running.stop()
        let consumed = try await broker.consume(count: 5_000, timeout: .seconds(30))
        let audit = try audit(perKey, consumed)
        try expect(audit.isClean && audit.duplicates == 0, "plain delivery: \(audit)")
    }

    func survivesPartitionLeaderDown(_ broker: any OutboxPublisherUnderTest) async throws {
        let store = InMemoryOutboxStore()
        let perKey = messages(broker, keys: 30, perKey: 60)
        let running = relay(store, broker)
        try await enqueue(store, Array(perKey.prefix(10)))
        try await broker.inject(.partitionLeaderDown)
        try await enqueue(store, Array(perKey.dropFirst(10)))
        try await drain(store)
        try await running.stop()
        let consumed = try await broker.consume(count: 1_800, timeout: .seconds(30))
        let audit = try audit(perKey, consumed)
        try expect(audit.isClean, "leader down: \(audit)")
    }

    func retriesRetriableErrors(_ broker: any OutboxPublisherUnderTest) async throws {
        let store = InMemoryOutboxStore()
        let perKey = messages(broker, keys: 20, perKey: 50)
        try await enqueue(store, perKey)
        try await broker.inject(.retriableErrors(10))
        let running = relay(store, broker)
        try await drain(store)
        try await running.stop()
        let consumed = try await broker.consume(count: 1_000, timeout: .seconds(30))
        let audit = try audit(perKey, consumed)
        try expect(audit.isClean, "retriable errors: \(audit)")
    }

    func deadLettersPermanentFailures(_ broker: any OutboxPublisherUnderTest) async throws {
        let store = InMemoryOutboxStore()
        var perKey = messages(broker, keys: 10, perKey: 30)
        let poison = [broker.makePoisonMessage(key: "key-3"), broker.makePoisonMessage(key: nil)]
        perKey[3].insert(poison[0], at: 5)
        perKey.append([poison[1]])
        try await enqueue(store, perKey)
        let running = relay(store, broker)
        try await drain(store, expectDead: 2)
        try await running.stop()
        let letters = try await store.deadLetters(limit: 10, afterSequence: nil)
        try expect(Set(letters.map(\.record.message.id)) == Set(poison.map(\.id)), "exactly the poison messages are dead")
        try expect(letters.allSatisfy { ($0.record.lastError ?? "").isEmpty == false }, "each dead letter keeps its reason")
        let consumed = try await broker.consume(count: 300, timeout: .seconds(30))
        let audit = try audit(perKey, consumed, deadLettered: Set(poison.map(\.id)))
        try expect(audit.isClean, "poison isolation: \(audit)")
    }

    func rebuildsAfterFatalError(_ broker: any OutboxPublisherUnderTest) async throws {
        let store = InMemoryOutboxStore()
        let perKey = messages(broker, keys: 20, perKey: 50)
        try await enqueue(store, Array(perKey.prefix(10)))
        let running = relay(store, broker)
        try await drain(store)
        try await broker.inject(.fatalProducerError)
        try await enqueue(store, Array(perKey.dropFirst(10)))
        try await drain(store)
        try await running.stop()
        let consumed = try await broker.consume(count: 1_000, timeout: .seconds(30))
        let audit = try audit(perKey, consumed)
        try expect(audit.isClean, "after a fatal producer error: \(audit)")
    }

    func shutdownDuringOutageAcknowledgesNothing(_ broker: any OutboxPublisherUnderTest) async throws {
        let store = InMemoryOutboxStore()
        let perKey = messages(broker, keys: 10, perKey: 20)
        try await broker.inject(.outage)
        try await enqueue(store, perKey)
        let running = relay(store, broker)
        try await Task.sleep(for: .seconds(1))
        try await running.stop()
        try await broker.close()
        let status = try await store.status(now: Date())
        try expect(status.pending == 200, "nothing the broker did not take may be acknowledged: pending \(status.pending) of 200")
        try expect(status.dead == 0, "an outage must not dead-letter messages")
    }

    func longOutageUsesNoAttempts(_ broker: any OutboxPublisherUnderTest) async throws {
        let store = InMemoryOutboxStore()
        let perKey = messages(broker, keys: 10, perKey: 20)
        try await enqueue(store, Array(perKey.map { Array($0.prefix(10)) }))
        let maximumAttempts = 3
        let configuration = OutboxRelayConfiguration.forTesting(retryPolicy: .init(
            maximumAttempts: maximumAttempts, maximumPermanentFailureAttempts: 1,
            initialBackoff: .milliseconds(20), maximumBackoff: .milliseconds(100)))
        let running = RunningRelay(OutboxRelay(store: store, publisher: broker.publisher, configuration: configuration, logger: logger), logger: logger)
        try await drain(store)
        try await broker.inject(.outage)
        try await enqueue(store, Array(perKey.map { Array($0.dropFirst(10)) }))
        // Longer than every attempt timing out one after the other.
        let outage = broker.deliveryTimeout * (maximumAttempts + 2)
        let started = ContinuousClock.now
        var worst = OutboxStatus(pending: 0, retrying: 0, inFlight: 0, dead: 0, deliveredRetained: 0, oldestPendingAge: nil, partitionCount: 0, relays: [])
        while ContinuousClock.now - started < outage {
            let status = try await store.status(now: Date())
            if status.retrying + status.dead > worst.retrying + worst.dead { worst = status }
            try await Task.sleep(for: .milliseconds(100))
        }
        try await broker.inject(.recovery)
        guard worst.retrying == 0 && worst.dead == 0 else {
            try await running.stop()
            throw ConformanceFailure(
                "[\(harness.name)] an outage of \(outage) (delivery timeout \(broker.deliveryTimeout)) used up attempts: \(worst.retrying) retrying, \(worst.dead) dead")
        }
        try await drain(store, timeout: .seconds(60))
        try await running.stop()
        let consumed = try await broker.consume(count: 200, timeout: .seconds(30))
        let audit = try audit(perKey, consumed)
        try expect(audit.isClean, "after a long outage: \(audit)")
    }
}
