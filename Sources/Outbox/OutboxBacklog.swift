package import Foundation

/// What the relay's gauges show of a store's backlog, read cheaply enough to run every few seconds
/// against a table of millions of rows.
///
/// Unlike ``OutboxStatus`` (exact counts, one pass over the whole table, for `outbox status`),
/// every figure here is an indexed read of bounded size: counts stop at ``countLimit`` and the
/// oldest pending message is one index probe. See "Metrics" in the README for what each costs.
public struct OutboxBacklog: Sendable, Hashable {
    /// Pending messages (including those waiting for a retry), counted up to ``countLimit``.
    public var pending: Int
    /// Dead-lettered messages, counted up to ``countLimit``.
    public var dead: Int
    /// Where the counts stop: a count equal to it means "at least this many".
    public var countLimit: Int
    /// Age of the first pending message in commit order, or `nil` when nothing is pending. That
    /// message is the one the relays wait on longest, so this is the delay a new message meets.
    public var oldestPendingAge: Duration?

    /// Creates a backlog reading.
    public init(pending: Int, dead: Int, countLimit: Int, oldestPendingAge: Duration?) {
        self.pending = pending
        self.dead = dead
        self.countLimit = countLimit
        self.oldestPendingAge = oldestPendingAge
    }

    /// Whether ``pending`` stopped at the limit (there may be more).
    public var pendingIsAtLeast: Bool { pending >= countLimit }

    /// The age of a message created at `createdAt`, as of `now`, to the microsecond the stores
    /// keep (never negative: clocks of the writer and the relay may disagree a little). Shared by
    /// ``OutboxStatus`` and the backlog.
    package static func age(of createdAt: Date?, now: Date) -> Duration? {
        createdAt.map { .microseconds(max(0, OutboxStoreSupport.microseconds(now) - OutboxStoreSupport.microseconds($0))) }
    }
}
