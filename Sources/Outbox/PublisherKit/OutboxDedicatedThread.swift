import Foundation

/// Blocking calls of C clients (connect, flush, close) run on a thread of their own, never on
/// Swift's cooperative pool, which has as many threads as cores.
package enum OutboxDedicatedThread {
    /// Runs `work` on a new thread named `name` and returns its result.
    package static func run<T: Sendable>(name: String, _ work: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            let thread = Thread { continuation.resume(returning: work()) }
            thread.name = name
            thread.start()
        }
    }
}
