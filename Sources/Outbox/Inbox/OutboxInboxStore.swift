public import Foundation

/// The consumer's half of the outbox, as a store provides it: the inbox records which messages a
/// consumer group has handled, in the same transaction as the handler's own writes.
///
/// Guarantees (checked by the inbox conformance suite):
/// - I1: ``handleOnce(_:group:now:handler:)`` runs the handler inside one transaction of the store
///   and records the message in the inbox in that same transaction: both commit, or neither.
/// - I2: a message already recorded for the group (same ``OutboxInboxMessage/identity``) is not
///   handed to the handler again while its record is kept (the retention window).
public protocol OutboxInboxStore: Sendable {
    /// The application's handler, in this store's transaction type (a GRDB `Database`, a
    /// postgres-nio `PostgresConnection`, …).
    associatedtype Handler: Sendable

    /// Creates or upgrades the inbox tables; safe to run again.
    func migrateInbox() async throws

    /// Runs `handler` for `message` in one transaction that also records it for `group`, unless it
    /// was recorded already. A handler that throws rolls its writes back with the record.
    func handleOnce(_ message: OutboxInboxMessage, group: String, now: Date, handler: Handler) async throws -> OutboxInboxOutcome

    /// Runs `handler` for each message not yet recorded for `group`, in order, each with its
    /// record, and answers one outcome per message (a second copy of a message within the batch is
    /// a duplicate). The messages are of different keys. A handler that throws ends the batch and
    /// the error is rethrown; every message is then handled with its record or not at all (I1
    /// holds per message), and the consumer handles the batch again one message at a time, so the
    /// failure counts against the message that caused it and the others are handled or skipped.
    ///
    /// The default runs ``handleOnce(_:group:now:handler:)`` for each message in turn (a
    /// transaction each); the SQLite and PostgreSQL stores commit once per batch, and roll the
    /// whole batch back on a failure.
    func handleBatch(_ messages: [OutboxInboxMessage], group: String, now: Date, handler: Handler) async throws -> [OutboxInboxOutcome]

    /// Keeps a message whose handler failed for good, with its reason and attempts, and records it
    /// for the group so a redelivery is skipped; in one transaction.
    func deadLetter(_ message: OutboxInboxMessage, group: String, reason: String, attempts: Int, now: Date) async throws

    /// The group's dead letters, oldest first, after `afterID` (paging).
    func inboxDeadLetters(group: String, limit: Int, afterID: Int64?) async throws -> [OutboxInboxDeadLetter]

    /// Removes dead letters (and their inbox records, so a retried one can be handled); returns
    /// the messages removed, for the consumer to hand to the handler again.
    func takeInboxDeadLetters(group: String, ids: [Int64]) async throws -> [OutboxInboxDeadLetter]

    /// Deletes up to `limit` inbox records of the group handled before `cutoff` (the retention,
    /// which is the deduplication window); returns how many.
    func removeHandled(group: String, before cutoff: Date, limit: Int) async throws -> Int
}

extension OutboxInboxStore {
    public func handleBatch(_ messages: [OutboxInboxMessage], group: String, now: Date, handler: Handler) async throws -> [OutboxInboxOutcome] {
        var outcomes: [OutboxInboxOutcome] = []
        for message in messages { outcomes.append(try await handleOnce(message, group: group, now: now, handler: handler)) }
        return outcomes
    }
}

/// What ``OutboxInboxStore/handleOnce(_:group:now:handler:)`` did.
public enum OutboxInboxOutcome: Sendable, Hashable {
    /// The handler ran and its transaction committed with the inbox record.
    case handled
    /// The group had handled this message already: the handler did not run.
    case duplicate
}

/// A message whose handler failed for good.
public struct OutboxInboxDeadLetter: Sendable, Hashable {
    /// The store's id of the dead letter.
    public var id: Int64
    /// The consumer group.
    public var group: String
    /// The message as received.
    public var message: OutboxInboxMessage
    /// The handler's last error, without payload data.
    public var reason: String
    /// How many times the handler failed.
    public var attempts: Int
    /// When it was dead-lettered.
    public var failedAt: Date

    /// Creates a dead letter.
    public init(id: Int64, group: String, message: OutboxInboxMessage, reason: String, attempts: Int, failedAt: Date) {
        self.id = id
        self.group = group
        self.message = message
        self.reason = reason
        self.attempts = attempts
        self.failedAt = failedAt
    }
}
