import Logging
import Outbox
import Synchronization

/// Routes librdkafka delivery reports back to the batch that produced each message.
///
/// Every produced message carries an integer token as its opaque; the router maps the token to
/// its batch slot. Nothing is allocated per message beyond the dictionary entry, which the delivery
/// report removes.
final class KafkaDeliveryRouter: Sendable {
    private let slots = Mutex<(next: UInt64, pending: [UInt64: (batch: KafkaDeliveryBatch, index: Int)])>((1, [:]))
    /// Raised after each poll that served events: a producer waiting on a full queue retries.
    let progress = OutboxSignal()
    /// Set by the error callback when librdkafka raises a fatal error.
    private let fatalError = Mutex<String?>(nil)
    let logger: Logger

    init(logger: Logger) { self.logger = logger }

    func raiseFatal(_ reason: String) { fatalError.withLock { $0 = reason } }

    /// The pending fatal error, cleared.
    func takeFatal() -> String? { fatalError.withLock { error in defer { error = nil }; return error } }

    func register(_ batch: KafkaDeliveryBatch, index: Int) -> UInt64 {
        slots.withLock { slots in
            let token = slots.next
            slots.next += 1
            slots.pending[token] = (batch, index)
            return token
        }
    }

    /// Forgets a token whose produce call failed (no report will come).
    func cancel(_ token: UInt64) {
        _ = slots.withLock { $0.pending.removeValue(forKey: token) }
    }

    func deliver(token: UInt64, outcome: OutboxPublishOutcome) {
        let slot = slots.withLock { $0.pending.removeValue(forKey: token) }
        slot?.batch.complete(slot!.index, with: outcome)
    }

    /// Fails every message still waiting for a report (the producer is gone).
    func failAllPending(_ reason: String) {
        let all = slots.withLock { slots in
            defer { slots.pending.removeAll() }
            return Array(slots.pending.values)
        }
        for slot in all {
            slot.batch.complete(slot.index, with: .failed(reason, isRetriable: true, isPossiblyPersisted: true))
        }
    }

    var pendingCount: Int { slots.withLock { $0.pending.count } }
}

/// The outcomes of one `publish` call, filled in as delivery reports arrive.
final class KafkaDeliveryBatch: Sendable {
    private struct State {
        var outcomes: [OutboxPublishOutcome?]
        var remaining: Int
        var continuation: CheckedContinuation<[OutboxPublishOutcome], any Error>?
        var finished = false
    }

    private let state: Mutex<State>

    init(count: Int) {
        state = Mutex(State(outcomes: Array(repeating: nil, count: count), remaining: count))
    }

    func complete(_ index: Int, with outcome: OutboxPublishOutcome) {
        let resume = state.withLock { state -> (CheckedContinuation<[OutboxPublishOutcome], any Error>, [OutboxPublishOutcome])? in
            guard state.outcomes[index] == nil else { return nil }
            state.outcomes[index] = outcome
            state.remaining -= 1
            guard state.remaining == 0, !state.finished, let continuation = state.continuation else { return nil }
            state.finished = true
            return (continuation, state.outcomes.map { $0! })
        }
        if let (continuation, outcomes) = resume { continuation.resume(returning: outcomes) }
    }

    /// Waits for every outcome; throws `CancellationError` if the task is cancelled first (the
    /// reports that arrive later are dropped).
    func outcomes() async throws -> [OutboxPublishOutcome] {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let ready = state.withLock { state -> Result<[OutboxPublishOutcome], any Error>? in
                    if state.finished { return .failure(CancellationError()) }  // cancelled before we got here
                    if state.remaining == 0 {
                        state.finished = true
                        return .success(state.outcomes.map { $0! })
                    }
                    state.continuation = continuation
                    return nil
                }
                if let ready { continuation.resume(with: ready) }
            }
        } onCancel: {
            let continuation = state.withLock { state -> CheckedContinuation<[OutboxPublishOutcome], any Error>? in
                guard !state.finished else { return nil }
                state.finished = true
                defer { state.continuation = nil }
                return state.continuation
            }
            continuation?.resume(throwing: CancellationError())
        }
    }
}
