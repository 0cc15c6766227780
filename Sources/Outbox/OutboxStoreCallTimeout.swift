import Synchronization

/// Runs one store call with a deadline, so a call that never returns (a driver waiting on a
/// connection the server dropped) fails like any other store error instead of stalling the relay.
///
/// The call runs in its own task; on timeout that task is cancelled and left to finish on its own
/// (a call that ignores cancellation cannot be waited for), and the caller gets an error at once.
package enum OutboxStoreCallTimeout {
    package static func run<T: Sendable>(_ operation: String, timeout: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        let outcome = Outcome<T>()
        let work = Task { outcome.finish(with: await Result(catching: body)) }
        let timer = Task {
            try? await Task.sleep(for: timeout)
            outcome.finish(with: .failure(OutboxError(
                code: .storeUnavailable, operation: operation,
                message: "The store did not answer the \(operation) within \(timeout); it is tried again.", isRetriable: true)))
        }
        let result = await withTaskCancellationHandler {
            await outcome.value()
        } onCancel: {
            outcome.finish(with: .failure(CancellationError()))
        }
        timer.cancel()
        work.cancel()
        return try result.get()
    }

    /// The first result wins; later ones are dropped.
    private final class Outcome<T: Sendable>: Sendable {
        private let state = Mutex<(result: Result<T, any Error>?, waiter: CheckedContinuation<Result<T, any Error>, Never>?)>((nil, nil))

        func finish(with result: Result<T, any Error>) {
            let waiter = state.withLock { state -> CheckedContinuation<Result<T, any Error>, Never>? in
                guard state.result == nil else { return nil }
                state.result = result
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume(returning: result)
        }

        func value() async -> Result<T, any Error> {
            await withCheckedContinuation { continuation in
                let ready = state.withLock { state -> Result<T, any Error>? in
                    if let result = state.result { return result }
                    state.waiter = continuation
                    return nil
                }
                if let ready { continuation.resume(returning: ready) }
            }
        }
    }
}

extension Result where Failure == any Error {
    init(catching body: () async throws -> Success) async {
        do { self = .success(try await body()) } catch { self = .failure(error) }
    }
}
