import Foundation
public import Logging
public import Outbox

/// The guarantees of the outbox (G1–G7, as the README lists them) as checks that run against any store.
///
/// Each backend's tests run every ``Check`` against its ``OutboxStoreHarness``:
///
/// ```swift
/// @Suite("SQLite conformance") struct SQLiteConformance {
///     @Test(arguments: OutboxStoreConformance.Check.allCases)
///     func check(_ check: OutboxStoreConformance.Check) async throws {
///         try await OutboxStoreConformance(harness: SQLiteHarness()).run(check)
///     }
/// }
/// ```
public struct OutboxStoreConformance: Sendable {
    /// One guarantee, checked end to end.
    public enum Check: String, CaseIterable, Sendable, CustomStringConvertible {
        /// G1: a rolled-back transaction enqueues nothing.
        case rollbackEnqueuesNothing
        /// Hostile strings, 4-byte UTF-8 and binary payloads come out byte-exact.
        case messagesComeOutByteExact
        /// G2/G4: 3 relays over 10,000 keyed messages with random retriable failures lose nothing and keep per-key order.
        case threeRelaysKeepOrderUnderRandomFailures
        /// G2/G3: a relay abandoned mid-batch loses nothing; duplicates come only from its batch.
        case abandonedRelayLosesNothing
        /// G5: a poison message is dead-lettered with its reason while everything else flows.
        case poisonMessageIsDeadLettered
        /// G4: a retried message holds back later messages of its key only.
        case retryHoldsBackOnlyItsKey
        /// G7: graceful shutdown during failures acknowledges nothing the broker did not take.
        case shutdownDuringFailuresAcknowledgesNothing
        /// G2: a broker outage uses up no attempts, and the backlog drains once it is back.
        case brokerOutageUsesNoAttempts
        /// G6: an idle relay publishes a new message within the store's wake-up latency.
        case idleRelayWakesUpPromptly
        /// Relays share the partitions fairly and take over when one leaves.
        case relaysRebalanceWhenJoiningAndLeaving
        /// Fencing: a relay whose lease lapsed cannot acknowledge over the new owner.
        case staleOwnerIsFenced
        /// A claim skips later messages of a key whose earlier message waits for a retry.
        case claimSkipsKeysWaitingForRetry
        /// Dead letters can be listed, retried and discarded.
        case deadLettersCanBeRetriedAndDiscarded
        /// With a retention window, delivered rows stay until cleanup removes them in bounded passes.
        case deliveredRowsAreRetainedThenRemoved
        /// G4 across commit order: a transaction that commits late with a smaller sequence holds
        /// back its key (never published after a later message of it) and only its own partition.
        /// Needs a store whose transactions can stay open beside others
        /// (``OutboxStoreUnderTestWithOpenTransactions``); see ``forSingleWriterStores``.
        case lateCommitKeepsKeyOrder
        /// G4 without clocks: a message whose `createdAt` is ahead of every clock still goes first in its key.
        case futureCreatedAtKeepsKeyOrder
        /// A megabyte failure reason with NUL and control characters is cut and cleaned, never wedging an acknowledgement.
        case hugeFailureReasonIsStored
        /// A dead letter retried after its key moved on goes after what was delivered, before what is pending.
        case deadLetterRetriedAfterItsKeyMovedOn
        /// Two relays started with one id never share leases; a restart under a crashed relay's id takes over within a lease.
        case sameRelayIDNeverSharesLeases
        /// A claim stops at the message that reaches its byte bound (memory bounded by bytes, not only count).
        case claimStopsAtTheByteBound
        /// Overlapping enqueue transactions on one partition do not starve it (needs held-open transactions).
        case overlappingWritersDoNotStarveAPartition
        /// The gauges' backlog read counts pending and dead messages up to its limit and ages the
        /// first pending message in commit order.
        case backlogCountsStopAtTheLimit
        /// Messages left behind by later ones that were drained (waiting for a retry, sent back
        /// from the dead letters, in flight at a relay that crashed) are still claimed: a store
        /// that starts its claims past drained messages never starts past these.
        case messagesLeftBehindAreStillClaimed
        /// The status shows each live relay with its partitions, in-flight and published counts, and
        /// every partition's lease with its owner and expiry (what `outbox admin` shows).
        case statusShowsRelaysAndLeases
        /// An enqueue whose message id is already pending, or that names one id twice, fails with
        /// `.invalidMessage` and a sentence that says so (never the payload); nothing of it is
        /// written, and the message already there is published once, as it was.
        case enqueueRefusesAnIDAlreadyPending

        public var description: String { rawValue }

        /// Every check a store with one writer at a time can run (SQLite, in-memory): all but
        /// ``lateCommitKeepsKeyOrder`` and ``overlappingWritersDoNotStarveAPartition``, which need
        /// transactions held open while others commit.
        public static var forSingleWriterStores: [Check] {
            allCases.filter { $0 != .lateCommitKeepsKeyOrder && $0 != .overlappingWritersDoNotStarveAPartition }
        }
    }

    let harness: any OutboxStoreHarness
    let logger: Logger

    /// The limits a harness's store needs: the suite stores 10 MB payloads byte-exact, above the
    /// default limit (sized for Kafka's default `message.max.bytes`).
    public static let messageLimits = OutboxMessageLimits(maximumPayloadBytes: 12 * 1024 * 1024)

    /// Creates the suite for one backend.
    public init(harness: any OutboxStoreHarness, logger: Logger = OutboxStoreConformance.defaultLogger) {
        self.harness = harness
        self.logger = logger
    }

    /// Warnings and errors only, unless `OUTBOX_TEST_LOG_LEVEL` (e.g. `debug`) says otherwise.
    public static var defaultLogger: Logger {
        var logger = Logger(label: "outbox.conformance")
        let level = ProcessInfo.processInfo.environment["OUTBOX_TEST_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:))
        logger.logLevel = level ?? .error
        return logger
    }

    /// Runs one check on a fresh store.
    public func run(_ check: Check) async throws {
        let subject = try await harness.makeStore()
        do {
            try await run(check, on: subject)
        } catch {
            try? await subject.close()
            throw error
        }
        try await subject.close()
    }

    private func run(_ check: Check, on subject: any OutboxStoreUnderTest) async throws {
        switch check {
        case .rollbackEnqueuesNothing: try await rollbackEnqueuesNothing(subject)
        case .messagesComeOutByteExact: try await messagesComeOutByteExact(subject)
        case .threeRelaysKeepOrderUnderRandomFailures: try await threeRelaysKeepOrderUnderRandomFailures(subject)
        case .abandonedRelayLosesNothing: try await abandonedRelayLosesNothing(subject)
        case .poisonMessageIsDeadLettered: try await poisonMessageIsDeadLettered(subject)
        case .retryHoldsBackOnlyItsKey: try await retryHoldsBackOnlyItsKey(subject)
        case .shutdownDuringFailuresAcknowledgesNothing: try await shutdownDuringFailuresAcknowledgesNothing(subject)
        case .brokerOutageUsesNoAttempts: try await brokerOutageUsesNoAttempts(subject)
        case .idleRelayWakesUpPromptly: try await idleRelayWakesUpPromptly(subject)
        case .relaysRebalanceWhenJoiningAndLeaving: try await relaysRebalanceWhenJoiningAndLeaving(subject)
        case .staleOwnerIsFenced: try await staleOwnerIsFenced(subject)
        case .claimSkipsKeysWaitingForRetry: try await claimSkipsKeysWaitingForRetry(subject)
        case .deadLettersCanBeRetriedAndDiscarded: try await deadLettersCanBeRetriedAndDiscarded(subject)
        case .deliveredRowsAreRetainedThenRemoved: try await deliveredRowsAreRetainedThenRemoved(subject)
        case .lateCommitKeepsKeyOrder: try await lateCommitKeepsKeyOrder(subject)
        case .futureCreatedAtKeepsKeyOrder: try await futureCreatedAtKeepsKeyOrder(subject)
        case .hugeFailureReasonIsStored: try await hugeFailureReasonIsStored(subject)
        case .deadLetterRetriedAfterItsKeyMovedOn: try await deadLetterRetriedAfterItsKeyMovedOn(subject)
        case .sameRelayIDNeverSharesLeases: try await sameRelayIDNeverSharesLeases(subject)
        case .claimStopsAtTheByteBound: try await claimStopsAtTheByteBound(subject)
        case .overlappingWritersDoNotStarveAPartition: try await overlappingWritersDoNotStarveAPartition(subject)
        case .backlogCountsStopAtTheLimit: try await backlogCountsStopAtTheLimit(subject)
        case .statusShowsRelaysAndLeases: try await statusShowsRelaysAndLeases(subject)
        case .messagesLeftBehindAreStillClaimed: try await messagesLeftBehindAreStillClaimed(subject)
        case .enqueueRefusesAnIDAlreadyPending: try await enqueueRefusesAnIDAlreadyPending(subject)
        }
    }

    // MARK: - Helpers

    func relay(
        _ subject: any OutboxStoreUnderTest, _ publisher: any OutboxPublisher,
        _ configuration: OutboxRelayConfiguration = .forTesting()
    ) -> RunningRelay {
        RunningRelay(OutboxRelay(store: subject.store, publisher: publisher, configuration: configuration, logger: logger), logger: logger)
    }

    func expect(_ condition: Bool, _ message: @autoclosure () -> String) throws {
        if !condition { throw ConformanceFailure("[\(harness.name)] \(message())") }
    }

    /// Keyed messages: `keys` keys with `perKey` messages each, payload "key#index".
    static func keyedMessages(keys: Int, perKey: Int, prefix: String = "key") -> [[OutboxMessage]] {
        (0..<keys).map { key in
            (0..<perKey).map { index in
                OutboxMessage(topic: "orders", key: "\(prefix)-\(key)", type: "OrderPlaced", text: "\(prefix)-\(key)#\(index)")
            }
        }
    }

    static func audit(_ committed: [[OutboxMessage]], _ recorder: RecordingPublisher, deadLettered: Set<UUID> = []) -> DeliveryAudit {
        var byKey: [String?: [UUID]] = [:]
        for messages in committed {
            for message in messages { byKey[message.key, default: []].append(message.id) }
        }
        return DeliveryAudit(committedByKey: byKey, deliveredIDs: recorder.deliveries.map(\.message.id), deadLettered: deadLettered)
    }

    func enqueueInterleaved(_ subject: any OutboxStoreUnderTest, _ perKey: [[OutboxMessage]], transactionSize: Int) async throws {
        // Round-robin over keys so transactions mix keys, as real traffic does.
        var flat: [OutboxMessage] = []
        let longest = perKey.map(\.count).max() ?? 0
        for index in 0..<longest {
            for messages in perKey where index < messages.count { flat.append(messages[index]) }
        }
        var start = 0
        while start < flat.count {
            let end = min(start + transactionSize, flat.count)
            try await subject.enqueueCommitted(Array(flat[start..<end]))
            start = end
        }
    }
}
