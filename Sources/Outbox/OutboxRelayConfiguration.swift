import Foundation
public import Metrics
public import Tracing

/// How an ``OutboxRelay`` claims, publishes and retries. Every value has a default that suits a
/// production relay; tests shorten the times.
public struct OutboxRelayConfiguration: Sendable {
    /// The relay's id in the store, unique per relay run. Default: host name, process id and a random suffix.
    public var relayID: String
    /// Messages claimed and published per batch. Default 500.
    public var batchSize: Int
    /// Batches published at once; the next claim overlaps the broker's acks. Default 2.
    public var maximumBatchesInFlight: Int
    /// Payload bytes claimed and in flight at most, across batches: what bounds the relay's memory
    /// when messages are large (a batch of 500 messages of 16 MiB would be 8 GiB). Each claim
    /// asks for at most its share (this divided by `maximumBatchesInFlight`); one message larger
    /// than that still goes, alone. Default 64 MiB.
    public var maximumBytesInFlight: Int
    /// Longest wait between claims when the store sends no wake-up: the safety net that also finds
    /// retries that became due. Default 2 s, so an idle relay costs the store under one query per
    /// second (a claim every 2 s, a heartbeat every 2.5 s); stores wake the relay at commit.
    public var pollInterval: Duration
    /// How long a partition lease lasts without a heartbeat. A crashed relay's messages are
    /// picked up by others after this long. Default 10 s.
    public var leaseDuration: Duration
    /// Time between heartbeats; keep it well under `leaseDuration`. Default 2.5 s (a quarter of the lease).
    public var heartbeatInterval: Duration
    /// Retry and dead-letter rules.
    public var retryPolicy: OutboxRetryPolicy
    /// Keep delivered messages this long before cleanup deletes them; `nil` deletes at
    /// acknowledgement (the default, and the cheapest).
    public var deliveredRetention: Duration?
    /// Rows deleted per cleanup pass when `deliveredRetention` is set; keeps each delete short. Default 1,000.
    public var cleanupBatchSize: Int
    /// Time between cleanup runs when `deliveredRetention` is set. Default 30 s.
    public var cleanupInterval: Duration
    /// On graceful shutdown, how long to wait for batches in flight before abandoning them
    /// (they stay pending and are published again later). Default 10 s.
    public var shutdownGracePeriod: Duration
    /// First pause after the publisher reports the broker unreachable; doubles up to 30 s. Default 200 ms.
    public var publisherUnavailableBackoff: Duration
    /// Time between readings of the store's backlog for the gauges (pending, oldest pending age,
    /// dead letters), each a bounded indexed read. Default 10 s. Without a metrics backend
    /// (nothing bootstrapped, no `metricsFactory`) the backlog is not read.
    public var backlogGaugeInterval: Duration
    /// Where the backlog gauges stop counting: counts read at most this many index entries, and
    /// a gauge at this value means "at least". Default 10,000.
    public var backlogCountLimit: Int
    /// Where metrics go; `nil` uses the bootstrapped `MetricsSystem`.
    public var metricsFactory: (any MetricsFactory)?
    /// Where publish spans go; `nil` uses the bootstrapped `InstrumentationSystem` tracer (none
    /// bootstrapped: no spans, no cost).
    public var tracer: (any Tracer)?

    /// Creates a configuration; every argument has a default.
    public init(
        relayID: String = OutboxRelayConfiguration.makeRelayID(),
        batchSize: Int = 500,
        maximumBatchesInFlight: Int = 2,
        maximumBytesInFlight: Int = 64 * 1024 * 1024,
        pollInterval: Duration = .seconds(2),
        leaseDuration: Duration = .seconds(10),
        heartbeatInterval: Duration = .milliseconds(2500),
        retryPolicy: OutboxRetryPolicy = .init(),
        deliveredRetention: Duration? = nil,
        cleanupBatchSize: Int = 1000,
        cleanupInterval: Duration = .seconds(30),
        shutdownGracePeriod: Duration = .seconds(10),
        publisherUnavailableBackoff: Duration = .milliseconds(200),
        backlogGaugeInterval: Duration = .seconds(10),
        backlogCountLimit: Int = 10_000,
        metricsFactory: (any MetricsFactory)? = nil,
        tracer: (any Tracer)? = nil
    ) {
        self.tracer = tracer
        self.relayID = relayID
        self.batchSize = max(1, batchSize)
        self.maximumBatchesInFlight = max(1, maximumBatchesInFlight)
        self.maximumBytesInFlight = max(1, maximumBytesInFlight)
        self.pollInterval = pollInterval
        self.leaseDuration = leaseDuration
        self.heartbeatInterval = heartbeatInterval
        self.retryPolicy = retryPolicy
        self.deliveredRetention = deliveredRetention
        self.cleanupBatchSize = max(1, cleanupBatchSize)
        self.cleanupInterval = cleanupInterval
        self.shutdownGracePeriod = shutdownGracePeriod
        self.publisherUnavailableBackoff = publisherUnavailableBackoff
        self.backlogGaugeInterval = backlogGaugeInterval
        self.backlogCountLimit = max(1, backlogCountLimit)
        self.metricsFactory = metricsFactory
    }

    /// A relay id built from the host name, the process id and a random suffix.
    public static func makeRelayID() -> String {
        let suffix = String(UInt32.random(in: 0...UInt32.max), radix: 36)
        return "\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)-\(suffix)"
    }

    /// Checks the values against each other.
    ///
    /// - Throws: ``OutboxError`` with code `.invalidConfiguration`, naming the setting to fix.
    public func validate() throws {
        func invalid(_ text: String) -> OutboxError {
            OutboxError(code: .invalidConfiguration, operation: "configure relay", message: text)
        }
        if relayID.isEmpty || relayID.utf8.count > 200 {
            throw invalid("The relay id must be 1 to 200 bytes long.")
        }
        if heartbeatInterval <= .zero || leaseDuration <= .zero {
            throw invalid("The lease duration and the heartbeat interval must be positive.")
        }
        if heartbeatInterval * 2 > leaseDuration {
            throw invalid("The heartbeat interval must be at most half the lease duration, or leases lapse between heartbeats.")
        }
        if pollInterval <= .zero { throw invalid("The poll interval must be positive.") }
    }
}
