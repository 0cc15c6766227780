import Foundation
import Hummingbird
import OutboxHTTPServing
public import Logging
import Metrics
public import Outbox
public import Prometheus
public import ServiceLifecycle

/// Serves the process's metrics in the Prometheus text format at `GET /metrics`.
///
/// The one line that gives any process (a relay, an application with a relay inside, a consumer)
/// a Prometheus endpoint: bootstrap swift-metrics with a registry and add the endpoint to the
/// `ServiceGroup`, first, so that it is the last to stop.
///
/// ```swift
/// let metrics = try OutboxMetricsEndpoint.bootstrap(listening: "127.0.0.1:9464", logger: logger)
/// let group = ServiceGroup(services: [metrics, store, relay], gracefulShutdownSignals: [.sigterm], logger: logger)
/// ```
///
/// The endpoint has no authentication: the metrics hold no payloads, keys or ids (their
/// dimensions are bounded), but bind it to an address only your Prometheus reaches.
public struct OutboxMetricsEndpoint: Service {
    /// What the endpoint serves; a `PrometheusMetricsFactory` over it is swift-metrics' backend.
    public let registry: PrometheusCollectorRegistry
    /// Where it listens.
    public let address: OutboxListenAddress
    private let logger: Logger
    private let onListening: @Sendable (Int) -> Void

    /// Creates an endpoint serving `registry`.
    ///
    /// - Parameter onListening: called with the bound port once the server listens (useful with port 0).
    public init(address: OutboxListenAddress, registry: PrometheusCollectorRegistry, logger: Logger,
                onListening: @escaping @Sendable (Int) -> Void = { _ in }) {
        self.address = address
        self.registry = registry
        self.logger = logger
        self.onListening = onListening
    }

    /// Bootstraps swift-metrics with a new Prometheus registry and returns the endpoint serving it.
    /// Call it once per process, before creating relays (`MetricsSystem` can be bootstrapped once).
    ///
    /// - Parameter listening: `host:port`, e.g. `127.0.0.1:9464`.
    /// - Throws: ``OutboxError`` (`.invalidConfiguration`) when the address is not `host:port`.
    public static func bootstrap(listening: String, logger: Logger) throws -> OutboxMetricsEndpoint {
        let address = try OutboxListenAddress(parsing: listening)
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        return OutboxMetricsEndpoint(address: address, registry: registry, logger: logger)
    }

    /// Serves until graceful shutdown.
    ///
    /// - Throws: ``OutboxError`` (`.invalidConfiguration`) when the address cannot be bound (in use,
    ///   or not an address of this machine).
    public func run() async throws {
        let router = Router()
        let registry = self.registry
        router.get("metrics") { _, _ -> Response in
            var buffer = ByteBuffer()
            buffer.writeBytes(registry.emitToBuffer())
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"], body: .init(byteBuffer: buffer))
        }
        logger.info("Serving metrics", metadata: ["outbox.metrics_address": "\(address)"])
        try await OutboxHTTPServer.run(router, on: address, what: "The metrics endpoint", logger: logger, onListening: onListening)
    }
}
