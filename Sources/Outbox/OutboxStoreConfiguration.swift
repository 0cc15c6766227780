/// The settings of every store, with the same names on all four; every value has a default.
///
/// Each store names it `Configuration` (`SQLiteOutboxStore.Configuration`,
/// `PostgresOutboxStore.Configuration`, …). A setting a store has no use for is ignored by it, as
/// its documentation says.
public struct OutboxStoreConfiguration: Sendable {
    /// Where the outbox's tables live: the PostgreSQL schema (default `public`) or the MongoDB
    /// database (default: the client URL's). SQLite and MySQL keep the outbox beside the
    /// application's tables (the file, the pool's database) and ignore it. Validated as an
    /// identifier.
    public var schema: String?
    /// Prefix of the table (MongoDB: collection) names: `<prefix>_messages`, `<prefix>_leases`, ….
    /// Validated as an identifier. Default `outbox`.
    public var tablePrefix: String
    /// Virtual partitions created by the first `migrate` (later changes have no effect). Default 32.
    public var partitionCount: Int
    /// Size limits checked at enqueue.
    public var messageLimits: OutboxMessageLimits
    /// Whether the store's `run()` keeps a push wake-up going where the database has one
    /// (PostgreSQL LISTEN on a connection of the client's pool, a MongoDB change stream).
    /// `false`: relays poll. Default `true`.
    public var pushWakeUps: Bool
    /// How often a waiting relay looks for commits made elsewhere while messages flow: MySQL's
    /// and MongoDB's poll (when their push path is down), SQLite's `data_version` check. Default 10 ms.
    public var minimumPollInterval: Duration
    /// The longest pause of that poll when nothing changes. Default 10 s: an idle relay's own
    /// poll (``OutboxRelayConfiguration/pollInterval``) bounds the wait for the first commit.
    public var maximumPollInterval: Duration
    /// Pause before a lost push wake-up (PostgreSQL's listener) connects again. Default 1 s.
    public var reconnectDelay: Duration

    /// Creates a configuration.
    public init(
        schema: String? = nil,
        tablePrefix: String = "outbox",
        partitionCount: Int = 32,
        messageLimits: OutboxMessageLimits = .init(),
        pushWakeUps: Bool = true,
        minimumPollInterval: Duration = .milliseconds(10),
        maximumPollInterval: Duration = .seconds(10),
        reconnectDelay: Duration = .seconds(1)
    ) {
        self.schema = schema
        self.tablePrefix = tablePrefix
        self.partitionCount = partitionCount
        self.messageLimits = messageLimits
        self.pushWakeUps = pushWakeUps
        self.minimumPollInterval = minimumPollInterval
        self.maximumPollInterval = maximumPollInterval
        self.reconnectDelay = reconnectDelay
    }
}
