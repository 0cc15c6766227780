import Foundation
import Logging
import Outbox

/// Opening the store when a long-running command (a relay) starts.
///
/// A relay is often started beside its database — by an orchestrator, after a crash, while the
/// database restarts — so a store that cannot be reached *yet* is waited for, within a limit.
/// Everything that waiting cannot fix (a malformed URL, a refused login, missing tables) still
/// fails at once, in one sentence.
enum StoreStartup {
    /// Opens the store of `location` and checks that it answers (its outbox tables are there),
    /// retrying while the store is unreachable, for up to `limit`.
    ///
    /// - Throws: the store's error at once when it is not a passing unavailability, or the last
    ///   one when `limit` has passed.
    static func open(_ location: StoreLocation, settings: StoreSettings, waitingUpTo limit: Duration,
                     logger: Logger) async throws -> OpenedStore {
        let deadline = ContinuousClock.now + limit
        var delay = Duration.milliseconds(200)
        var waited = false
        while true {
            do {
                let opened = try await OpenedStore.open(location, settings: settings, logger: logger)
                do {
                    // Fail now, in one sentence, rather than log heartbeat errors forever.
                    try await location.withStore(logger: logger) { _ = try await $0.status(now: Date()) }
                } catch {
                    await opened.close()
                    throw error
                }
                if waited { logger.notice("The store answers; starting") }
                return opened
            } catch let error as OutboxError where isPassing(error) && ContinuousClock.now + delay < deadline {
                if !waited {
                    logger.warning("The store cannot be reached yet; waiting for it", metadata: [
                        "outbox.error": "\(error.message)", "outbox.wait.limit": "\(limit)",
                    ])
                }
                waited = true
                try await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(2))
            }
        }
    }

    /// Whether `error` says the store is down or restarting, not that something is wrong with
    /// what was asked of it.
    static func isPassing(_ error: OutboxError) -> Bool {
        error.code == .storeUnavailable && error.isRetriable
    }
}
