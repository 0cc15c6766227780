import Foundation

/// One dedicated OS thread that runs blocking C calls in order.
///
/// The C drivers (libmariadb, libmongoc) block their caller for a whole round trip. Running that
/// on Swift's cooperative pool (two threads on a two-core machine) would stall every other task,
/// so each connection owns one of these threads and awaits its jobs instead. Shared by the
/// package's driver modules; not public API.
package final class OutboxBlockingWorker: @unchecked Sendable {
    // All mutable state is guarded by `condition`.
    private let condition = NSCondition()
    private var jobs: [() -> Void] = []
    private var isStopped = false

    package init(name: String) {
        let thread = Thread { [self] in self.runJobs() }
        thread.name = name
        thread.start()
    }

    /// Runs `body` on the worker thread and returns its result. The job runs to its end even if
    /// the calling task is cancelled, because a C call cannot be interrupted halfway.
    package func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let accepted = submit { continuation.resume(with: Result { try body() }) }
            if !accepted { continuation.resume(throwing: OutboxBlockingWorkerStopped()) }
        }
    }

    /// Lets queued jobs finish, then ends the thread.
    package func stop() {
        condition.lock()
        isStopped = true
        condition.signal()
        condition.unlock()
    }

    /// Queues `job` without waiting for it; `false` when the worker is stopped.
    @discardableResult
    package func submit(_ job: @escaping () -> Void) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        guard !isStopped else { return false }
        jobs.append(job)
        condition.signal()
        return true
    }

    private func runJobs() {
        while true {
            condition.lock()
            while jobs.isEmpty && !isStopped { condition.wait() }
            if jobs.isEmpty && isStopped {
                condition.unlock()
                return
            }
            let batch = jobs
            jobs.removeAll()
            condition.unlock()
            for job in batch { job() }
        }
    }
}

/// Thrown by ``OutboxBlockingWorker/run(_:)`` after the worker was stopped.
package struct OutboxBlockingWorkerStopped: Error, CustomStringConvertible {
    package init() {}
    package var description: String { "The connection is closed." }
}
