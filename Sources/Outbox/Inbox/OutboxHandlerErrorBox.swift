import Synchronization

/// Carries the application handler's own error out of a store transaction, so that
/// `handleOnce` rethrows it as it was, not mapped as a store error: the consumer counts a
/// handler's failure as an attempt, a store's as an outage.
package final class OutboxHandlerErrorBox: Sendable {
    private let error = Mutex<(any Error)?>(nil)

    package init() {}

    /// Runs the handler, keeping what it throws before rethrowing it.
    package func run<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch {
            self.error.withLock { $0 = error }
            throw error
        }
    }

    /// Runs an async handler, keeping what it throws before rethrowing it.
    package func run<T>(_ body: () async throws -> T) async throws -> T {
        do { return try await body() } catch {
            self.error.withLock { $0 = error }
            throw error
        }
    }

    /// Rethrows the handler's error if the handler failed, else `error`.
    package func rethrow(_ error: any Error) -> any Error {
        self.error.withLock { $0 } ?? error
    }
}
