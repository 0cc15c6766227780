/// One `publish` call of a broker that cannot refuse a message because the one before it failed
/// (NATS JetStream, RabbitMQ): per key one message in flight, each sent after the previous one was
/// stored; keys and keyless messages pipelined up to an in-flight limit shared by all calls.
///
/// Pipelining one key on such a broker breaks order as soon as the first message fails and the
/// second is stored (a server restarting: its streams answer a moment after it takes connections).
package enum OutboxKeyOrderedBatch {
    /// Where the broker's answers for one call arrive: message index and outcome.
    package typealias Sink = AsyncStream<(index: Int, outcome: OutboxPublishOutcome)>.Continuation

    /// Publishes `records` through `send`, which returns an outcome at once when the message could
    /// not be sent, or `nil` when the broker's answer will come through the sink.
    ///
    /// - Parameters:
    ///   - maximumInFlight: unacknowledged messages of all calls together, at most.
    ///   - inFlight: unacknowledged messages of all calls now.
    ///   - waitForRoom: returns when fewer than `maximumInFlight` are unacknowledged.
    package static func publish(
        _ records: [OutboxRecord], maximumInFlight: Int, inFlight: () -> Int,
        waitForRoom: () async throws -> Void,
        send: (_ index: Int, _ sink: Sink) -> OutboxPublishOutcome?
    ) async throws -> [OutboxPublishOutcome] {
        var plan = Plan(records.map(\.message.key))
        let (outcomes, sink) = AsyncStream.makeStream(of: (index: Int, outcome: OutboxPublishOutcome).self)
        defer { sink.finish() }
        var mine = 0
        var events = outcomes.makeAsyncIterator()
        while !plan.isFinished {
            // Send what may go now, as far as the in-flight limit allows.
            while let index = plan.nextReady() {
                if inFlight() >= maximumInFlight {
                    plan.putBack(index)
                    break
                }
                if let refused = send(index, sink) {
                    plan.finish(index, with: refused)
                } else {
                    mine += 1
                }
            }
            if plan.isFinished { break }
            if mine == 0 {
                // Nothing of this call is in flight, so no answer will come: other calls hold the room.
                try await waitForRoom()
                continue
            }
            guard let event = await events.next() else { throw CancellationError() }
            try Task.checkCancellation()
            mine -= 1
            plan.finish(event.index, with: event.outcome)
        }
        return plan.outcomes
    }
}

extension OutboxKeyOrderedBatch {
    /// The order in which one batch's messages may be sent: per key one at a time, in batch order;
    /// messages without a key at once. A message that does not end delivered holds back the rest
    /// of its key, which are reported `.skipped`.
    package struct Plan {
        package private(set) var outcomes: [OutboxPublishOutcome]
        private var answered: [Bool]
        private var remaining: Int
        /// Indices that may be sent now, in batch order.
        private var ready: [Int] = []
        private var readyStart = 0
        /// Per key, the indices still waiting for the one before them.
        private var waiting: [String: [Int]] = [:]
        private let keys: [String?]

        package init(_ keys: [String?]) {
            self.keys = keys
            outcomes = Array(repeating: .skipped, count: keys.count)
            answered = Array(repeating: false, count: keys.count)
            remaining = keys.count
            var seen: Set<String> = []
            for (index, key) in keys.enumerated() {
                guard let key else { ready.append(index); continue }
                if seen.insert(key).inserted { ready.append(index) } else { waiting[key, default: []].append(index) }
            }
            ready.sort()
        }

        package var isFinished: Bool { remaining == 0 }

        /// The next message that may be sent, if any.
        package mutating func nextReady() -> Int? {
            guard readyStart < ready.count else { return nil }
            defer { readyStart += 1 }
            return ready[readyStart]
        }

        /// Returns a message taken with ``nextReady()`` that could not be sent yet.
        package mutating func putBack(_ index: Int) {
            readyStart -= 1
            ready[readyStart] = index
        }

        /// Records a message's outcome and releases (or holds back) the next one of its key.
        package mutating func finish(_ index: Int, with outcome: OutboxPublishOutcome) {
            guard !answered[index] else { return }
            answered[index] = true
            outcomes[index] = outcome
            remaining -= 1
            guard let key = keys[index], var next = waiting[key], !next.isEmpty else { return }
            if outcome.isDelivered {
                ready.append(next.removeFirst())
                waiting[key] = next
            } else {
                waiting[key] = nil
                for skipped in next where !answered[skipped] {
                    answered[skipped] = true
                    outcomes[skipped] = .skipped
                    remaining -= 1
                }
            }
        }
    }
}
