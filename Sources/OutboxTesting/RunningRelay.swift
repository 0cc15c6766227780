public import Foundation
public import Logging
public import Outbox
import ServiceLifecycle

/// A relay running in its own `ServiceGroup`, which a test can stop gracefully or "kill".
public final class RunningRelay: Sendable {
    /// The relay.
    public let relay: OutboxRelay
    private let group: ServiceGroup
    private let task: Task<Void, any Error>

    /// Starts `relay` at once.
    public init(_ relay: OutboxRelay, logger: Logger = Logger(label: "outbox.test")) {
        self.relay = relay
        let group = ServiceGroup(services: [relay], logger: logger)
        self.group = group
        task = Task { try await group.run() }
    }

    /// Graceful shutdown: stop claiming, finish in-flight batches, release leases. Returns when the relay has.
    public func stop() async throws {
        await group.triggerGracefulShutdown()
        try await task.value
    }

    /// Cancels the relay as a crash would: it acknowledges nothing more and releases nothing.
    public func kill() async {
        task.cancel()
        _ = try? await task.value
    }
}

/// The short leases and timers conformance runs use, so lease expiry takes seconds, not minutes.
extension OutboxRelayConfiguration {
    /// A configuration for tests: 1.5 s leases, 250 ms heartbeats, quick retries.
    public static func forTesting(
        relayID: String = "relay-\(UUID().uuidString.prefix(8))",
        batchSize: Int = 100,
        maximumBatchesInFlight: Int = 2,
        pollInterval: Duration = .milliseconds(200),
        retryPolicy: OutboxRetryPolicy = .init(
            maximumAttempts: 50, maximumPermanentFailureAttempts: 2,
            initialBackoff: .milliseconds(20), maximumBackoff: .milliseconds(200)),
        deliveredRetention: Duration? = nil
    ) -> OutboxRelayConfiguration {
        OutboxRelayConfiguration(
            relayID: relayID, batchSize: batchSize, maximumBatchesInFlight: maximumBatchesInFlight,
            pollInterval: pollInterval, leaseDuration: .milliseconds(1500), heartbeatInterval: .milliseconds(250),
            retryPolicy: retryPolicy, deliveredRetention: deliveredRetention,
            shutdownGracePeriod: .seconds(3), publisherUnavailableBackoff: .milliseconds(50))
    }
}

/// A conformance check that did not hold; the description says what was expected and what happened.
public struct ConformanceFailure: Error, CustomStringConvertible {
    /// What went wrong.
    public let description: String

    /// Creates a failure.
    public init(_ description: String) { self.description = description }
}

/// Polls `condition` every 20 ms until it holds, or throws after `timeout` with `what` in the message.
///
/// Package access: the conformance suites and the project's own tests use it; it is not part of
/// what OutboxTesting offers users.
package func waitUntil(
    _ what: @autoclosure () -> String, timeout: Duration = .seconds(30),
    _ condition: () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while try await !condition() {
        if ContinuousClock.now > deadline { throw ConformanceFailure("Timed out after \(timeout) waiting for: \(what())") }
        try await Task.sleep(for: .milliseconds(20))
    }
}
