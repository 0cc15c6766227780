public import Outbox
import Synchronization

/// A publisher that fails chosen messages, slows down or "crashes", and delivers the rest to a
/// ``RecordingPublisher``. It honours the publisher contract: after a message fails, later
/// messages with the same key in the same batch are reported skipped, never delivered.
public final class FaultInjectingPublisher: OutboxPublisher, Sendable {
    /// What happens to one message.
    public struct Fault: Sendable, Hashable {
        enum Kind: Hashable {
            case failRetriable
            case failPermanently
        }

        let kind: Kind
        let reason: String

        /// The broker refuses the message this time; a later attempt may succeed.
        public static func retriable(_ reason: String = "injected retriable failure") -> Fault {
            Fault(kind: .failRetriable, reason: reason)
        }

        /// The broker will never take the message.
        public static func permanent(_ reason: String = "injected permanent failure") -> Fault {
            Fault(kind: .failPermanently, reason: reason)
        }
    }

    /// What happens to a whole batch before its messages are looked at.
    public struct BatchFault: Sendable, Hashable {
        enum Kind: Hashable {
            case unavailable
            case crash(deliveredBeforeCrash: Int)
        }

        let kind: Kind

        /// The broker cannot be reached: `publish` throws.
        public static let unavailable = BatchFault(kind: .unavailable)

        /// Delivers the first `delivered` messages, then never answers (until cancelled), as a
        /// relay process killed between broker ack and store ack.
        public static func crash(afterDelivering delivered: Int) -> BatchFault {
            BatchFault(kind: .crash(deliveredBeforeCrash: delivered))
        }
    }

    /// The deliveries that got through.
    public let recorder: RecordingPublisher
    private let messageFault: @Sendable (OutboxRecord) -> Fault?
    private let batchFault: @Sendable ([OutboxRecord]) -> BatchFault?
    private let delay: Duration?
    private let crashed = Mutex<[[OutboxRecord]]>([])
    private let fired = Mutex<(messages: Int, unavailable: Int)>((0, 0))

    /// Creates a publisher.
    ///
    /// - Parameters:
    ///   - recorder: where delivered messages go.
    ///   - delay: a pause before each batch is answered (a slow broker).
    ///   - batchFault: decides, per batch, whether the broker is unreachable or the relay "crashes".
    ///   - messageFault: decides, per message and attempt, whether it fails.
    public init(
        recorder: RecordingPublisher = RecordingPublisher(),
        delay: Duration? = nil,
        batchFault: @escaping @Sendable ([OutboxRecord]) -> BatchFault? = { _ in nil },
        messageFault: @escaping @Sendable (OutboxRecord) -> Fault? = { _ in nil }
    ) {
        self.recorder = recorder
        self.delay = delay
        self.batchFault = batchFault
        self.messageFault = messageFault
    }

    /// Batches that were cut short by a `.crash` fault.
    public var crashedBatches: [[OutboxRecord]] { crashed.withLock { $0 } }

    /// How many times a message fault fired (a message reported failed). A test asserts it, so a
    /// fault that never fired cannot pass for a fault survived.
    public var injectedMessageFailures: Int { fired.withLock { $0.messages } }

    /// How many batches found the broker unreachable (`.unavailable` fired).
    public var injectedOutages: Int { fired.withLock { $0.unavailable } }

    public func publish(_ records: [OutboxRecord]) async throws -> [OutboxPublishOutcome] {
        if let delay { try await Task.sleep(for: delay) }
        switch batchFault(records)?.kind {
        case .unavailable:
            fired.withLock { $0.unavailable += 1 }
            throw OutboxError(code: .publisherUnavailable, operation: "publish",
                              message: "The injected broker is unreachable.", isRetriable: true)
        case .crash(let delivered):
            recorder.record(records.prefix(delivered))
            crashed.withLock { $0.append(records) }
            // Never answer: the relay is "dead" until its task is cancelled.
            try await Task.sleep(for: .seconds(86_400))
            throw CancellationError()
        case nil:
            break
        }
        var failedKeys: Set<String> = []
        var outcomes: [OutboxPublishOutcome] = []
        var delivered: [OutboxRecord] = []
        outcomes.reserveCapacity(records.count)
        for record in records {
            if let key = record.message.key, failedKeys.contains(key) {
                outcomes.append(.skipped)
                continue
            }
            if let fault = messageFault(record) {
                fired.withLock { $0.messages += 1 }
                if let key = record.message.key { failedKeys.insert(key) }
                outcomes.append(.failed(fault.reason, isRetriable: fault.kind == .failRetriable))
            } else {
                delivered.append(record)
                outcomes.append(.delivered)
            }
        }
        recorder.record(delivered)
        return outcomes
    }
}
