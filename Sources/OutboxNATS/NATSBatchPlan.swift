import Outbox

/// The order in which one batch's messages may be sent: per key one at a time, in batch order;
/// messages without a key at once. A message that does not end delivered holds back the rest of
/// its key, which are reported `.skipped`.
struct NATSBatchPlan {
    private(set) var outcomes: [OutboxPublishOutcome]
    private var answered: [Bool]
    private var remaining: Int
    /// Indices that may be sent now, in batch order.
    private var ready: [Int] = []
    private var readyStart = 0
    /// Per key, the indices still waiting for the one before them.
    private var waiting: [String: [Int]] = [:]
    private let keys: [String?]

    init(_ keys: [String?]) {
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

    var isFinished: Bool { remaining == 0 }

    /// The next message that may be sent, if any.
    mutating func nextReady() -> Int? {
        guard readyStart < ready.count else { return nil }
        defer { readyStart += 1 }
        return ready[readyStart]
    }

    /// Returns a message taken with ``nextReady()`` that could not be sent yet.
    mutating func putBack(_ index: Int) {
        readyStart -= 1
        ready[readyStart] = index
    }

    /// Records a message's outcome and releases (or holds back) the next one of its key.
    mutating func finish(_ index: Int, with outcome: OutboxPublishOutcome) {
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
