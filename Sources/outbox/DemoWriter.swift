import Foundation
import Outbox
import Synchronization

/// The demo's application: writers that place orders, each order row and its `OrderPlaced`
/// message in one transaction. Each customer belongs to one writer, so a customer's orders commit
/// in the order they are written.
final class DemoWriter: Sendable {
    struct Written: Sendable {
        /// Message ids per customer, in commit order.
        var idsByCustomer: [String?: [UUID]]
        /// Payload of each message, to check byte-exactness.
        var payloads: [UUID: [UInt8]]
    }

    private let store: OpenedStore
    private let messages: Int
    private let writers: Int
    private let customers: Int
    private let count = Atomic<Int>(0)

    init(store: OpenedStore, messages: Int, writers: Int, customers: Int) {
        self.store = store
        self.messages = messages
        self.writers = writers
        self.customers = customers
    }

    /// Orders committed so far.
    var committed: Int { count.load(ordering: .relaxed) }

    func run() async throws -> Written {
        try await withThrowingTaskGroup(of: Written.self) { group in
            for writer in 0..<writers {
                group.addTask { try await self.write(as: writer) }
            }
            var all = Written(idsByCustomer: [:], payloads: [:])
            for try await part in group {
                all.idsByCustomer.merge(part.idsByCustomer) { $0 + $1 }
                all.payloads.merge(part.payloads) { first, _ in first }
            }
            return all
        }
    }

    private func write(as writer: Int) async throws -> Written {
        var written = Written(idsByCustomer: [:], payloads: [:])
        var orderNumber = writer
        var perCustomer: [Int: Int] = [:]
        while orderNumber < messages {
            // Customers of this writer only: customer ≡ writer (mod writers).
            let slots = max(1, (customers - writer + writers - 1) / writers)
            let customer = writer + writers * ((orderNumber / writers) % slots)
            let customerID = "customer-\(customer % customers)"
            let sequence = perCustomer[customer, default: 0]
            perCustomer[customer] = sequence + 1
            let orderID = "order-\(orderNumber)"
            let total = (orderNumber * 7919) % 100_000
            let payload = Array(#"{"order":"\#(orderID)","customer":"\#(customerID)","seq":\#(sequence),"total_cents":\#(total)}"#.utf8)
            let message = OutboxMessage(topic: "orders", key: customerID, type: "OrderPlaced", payload: payload,
                                        headers: [OutboxHeader("content-type", "application/json")])
            // The order row (its JSON as the note) and its message, in one transaction.
            try await store.write([message], [String(decoding: payload, as: UTF8.self)])
            written.idsByCustomer[customerID, default: []].append(message.id)
            written.payloads[message.id] = payload
            count.add(1, ordering: .relaxed)
            orderNumber += writers
        }
        return written
    }
}

/// Counts deliveries on the way to the real publisher, for the progress line, and notes each
/// message's commit → broker-ack latency (from its creation time; the bench's steady scenario asks
/// for `timings` and measures from the commit itself).
final class CountingPublisher: OutboxPublisher, Sendable {
    /// When the relay handed a message to the broker and when the broker acknowledged it.
    struct Timing: Sendable {
        var published: ContinuousClock.Instant
        var acknowledged: ContinuousClock.Instant
    }

    private let inner: any OutboxPublisher
    private let recordsTimings: Bool
    private let count = Atomic<Int>(0)
    private let acknowledged = Mutex<[Double]>([])
    private let timingsByID = Mutex<[UUID: Timing]>([:])

    init(_ inner: any OutboxPublisher, recordsTimings: Bool = false) {
        self.inner = inner
        self.recordsTimings = recordsTimings
    }

    /// Messages delivered so far (a redelivery counts again).
    var delivered: Int { count.load(ordering: .relaxed) }

    /// Milliseconds from the message's creation to the broker's ack, one per delivery.
    var latencies: [Double] { acknowledged.withLock { $0 } }

    /// Publish and ack instants of each delivered message (the first delivery), when recorded.
    var timings: [UUID: Timing] { timingsByID.withLock { $0 } }

    func publish(_ records: [OutboxRecord]) async throws -> [OutboxPublishOutcome] {
        let started = ContinuousClock.now
        let outcomes = try await inner.publish(records)
        let ended = ContinuousClock.now
        let now = Date()
        let delivered = zip(records, outcomes).filter { $1.isDelivered }
        acknowledged.withLock { $0.append(contentsOf: delivered.map { now.timeIntervalSince($0.0.message.createdAt) * 1000 }) }
        if recordsTimings {
            timingsByID.withLock { timings in
                for (record, _) in delivered where timings[record.message.id] == nil {
                    timings[record.message.id] = Timing(published: started, acknowledged: ended)
                }
            }
        }
        count.add(delivered.count, ordering: .relaxed)
        return outcomes
    }
}
