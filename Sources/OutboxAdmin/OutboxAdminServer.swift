import Foundation
import Hummingbird
import OutboxHTTPServing
public import Logging
public import Outbox
public import ServiceLifecycle

/// The admin web page of an outbox store and the JSON API behind it, served by Hummingbird.
///
/// - `GET /`: the page (HTML, its script and style are served by this server too: it works
///   offline and its Content-Security-Policy allows nothing from elsewhere).
/// - `GET /api/overview`: counts, oldest pending age, partitions with owner and lease expiry,
///   live relays, and throughput over the last 15 minutes (from samples read every `sampleInterval`).
/// - `GET /api/dead-letters?after=SEQUENCE&limit=N`: dead letters in sequence order.
/// - `POST /api/dead-letters/retry` and `/discard` with `{"sequences": [...]}`: the actions.
///
/// See ``OutboxAdminAccess`` for the token, the cross-site checks and the `Host` check.
public struct OutboxAdminServer: Service {
    private let store: any OutboxStore
    private let access: OutboxAdminAccess
    private let sampler: OutboxAdminSampler
    private let logger: Logger
    private let onListening: @Sendable (Int) -> Void

    /// Creates the server.
    ///
    /// - Parameters:
    ///   - store: the outbox to show. The server never changes it but through the dead-letter actions.
    ///   - address: where to listen; beyond loopback a `token` is required.
    ///   - token: the token every request must carry, or `nil` (loopback only).
    ///   - sampleInterval: how often the store's status is read (a whole-table count; see the README).
    ///   - onListening: called with the bound port once the server listens.
    /// - Throws: ``OutboxError`` (`.invalidConfiguration`) for a missing or malformed token.
    public init(store: any OutboxStore, address: OutboxListenAddress, token: String?, sampleInterval: Duration = .seconds(5),
                logger: Logger, onListening: @escaping @Sendable (Int) -> Void = { _ in }) throws {
        self.store = store
        self.access = try OutboxAdminAccess(token: token, address: address)
        self.sampler = OutboxAdminSampler(store: store, interval: sampleInterval, logger: logger)
        self.logger = logger
        self.onListening = onListening
    }

    /// Serves until graceful shutdown.
    ///
    /// - Throws: ``OutboxError`` (`.invalidConfiguration`) when the address cannot be bound.
    public func run() async throws {
        let router = Router()
        router.add(middleware: OutboxAdminGuard(access: access))
        OutboxAdminRoutes(store: store, sampler: sampler, logger: logger).add(to: router)
        let address = access.address
        let onListening = self.onListening
        let logger = self.logger
        logger.info("Serving the outbox admin page", metadata: ["outbox.admin_address": "\(address)"])
        let sampler = self.sampler
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { await sampler.run() }
            try await OutboxHTTPServer.run(router, on: address, what: "The admin page", logger: logger, onListening: onListening)
            group.cancelAll()
        }
    }
}
