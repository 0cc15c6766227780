public import Outbox

/// How the conformance suite reaches one store backend.
///
/// A backend's test target implements this once; ``OutboxStoreConformance`` then runs every
/// guarantee against it.
public protocol OutboxStoreHarness: Sendable {
    /// The backend's name as the test log shows it, e.g. "SQLite".
    var name: String { get }

    /// How soon a committed message reaches an idle relay whose poll interval is long (30 s in the
    /// check): the store's wake-up latency, with room for a loaded 2-core machine. The check proves
    /// the relay was woken rather than polling; `outbox bench` measures the latency itself.
    var wakeUpBound: Duration { get }

    /// A fresh, migrated, empty store, and the means to write to it as an application would.
    func makeStore() async throws -> any OutboxStoreUnderTest
}

/// One fresh store in a conformance run.
public protocol OutboxStoreUnderTest: Sendable {
    /// The store the relays use.
    var store: any OutboxStore { get }

    /// Writes the messages in one application transaction, with a business row beside them, and commits.
    func enqueueCommitted(_ messages: [OutboxMessage]) async throws

    /// Writes the messages in one application transaction, then rolls it back.
    func enqueueRolledBack(_ messages: [OutboxMessage]) async throws

    /// Releases connections and files.
    func close() async throws
}

/// A store whose application transactions can stay open while others commit (every server
/// store; not SQLite, whose one writer would block the others). Needed by
/// ``OutboxStoreConformance/Check/lateCommitKeepsKeyOrder``.
public protocol OutboxStoreUnderTestWithOpenTransactions: OutboxStoreUnderTest {
    /// Whether a second transaction writing to the same partition waits for an open one (MongoDB:
    /// both write the partition's counter document) instead of committing beside it.
    var writersToOnePartitionWait: Bool { get }

    /// Writes the messages in one application transaction, calls `enqueued`, keeps the
    /// transaction open until `mayCommit` returns true (checking every few milliseconds), then commits.
    func enqueueHeldOpen(_ messages: [OutboxMessage], enqueued: @Sendable () -> Void, mayCommit: @Sendable () -> Bool) async throws
}

extension InMemoryOutboxStore: OutboxStoreUnderTest {
    public var store: any OutboxStore { self }

    public func enqueueCommitted(_ messages: [OutboxMessage]) async throws {
        try withTransaction { transaction in
            for message in messages { try transaction.enqueue(message) }
        }
    }

    public func enqueueRolledBack(_ messages: [OutboxMessage]) async throws {
        struct Rollback: Error {}
        do {
            try withTransaction { transaction in
                for message in messages { try transaction.enqueue(message) }
                throw Rollback()
            }
        } catch is Rollback {}
    }

    public func close() async throws {}
}

/// The harness of ``InMemoryOutboxStore``.
public struct InMemoryStoreHarness: OutboxStoreHarness {
    /// Creates the harness.
    public init() {}
    public var name: String { "In-memory" }
    public var wakeUpBound: Duration { .seconds(2) }
    public func makeStore() async throws -> any OutboxStoreUnderTest {
        InMemoryOutboxStore(messageLimits: OutboxStoreConformance.messageLimits)
    }
}
