import Foundation

/// One dedicated OS thread that runs blocking C calls in order.
///
/// libmariadb blocks its caller for a whole round trip. Running that on Swift's cooperative pool
/// (two threads on a two-core machine) would stall every other task, so each connection owns one
/// of these threads and awaits its jobs instead.
final class BlockingWorker: @unchecked Sendable {
    // All mutable state is guarded by `condition`.
    private let condition = NSCondition()
    private var jobs: [() -> Void] = []
    private var isStopped = false

    init(name: String) {
        let thread = Thread { [self] in self.runJobs() }
        thread.name = name
        thread.start()
    }

    /// Runs `body` on the worker thread and returns its result. The job runs to its end even if
    /// the calling task is cancelled, because a C call cannot be interrupted halfway.
    func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let accepted = submit { continuation.resume(with: Result { try body() }) }
            if !accepted {
                continuation.resume(throwing: MySQLError(code: 2006, sqlState: "HY000", message: "The connection is closed.", operation: "run"))
            }
        }
    }

    /// Lets queued jobs finish, then ends the thread.
    func stop() {
        condition.lock()
        isStopped = true
        condition.signal()
        condition.unlock()
    }

    /// Queues `job` without waiting for it; `false` when the worker is stopped.
    @discardableResult
    func submit(_ job: @escaping () -> Void) -> Bool {
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
