import Foundation
import Outbox
import Synchronization

/// A session with an open transaction, handed to the body of
/// ``MongoClient/withTransaction(retryTimeout:_:)``. Pass it to every command of the transaction.
///
/// Use it from one task at a time and only inside the body; it is ended when the body returns.
public final class MongoSession: Sendable {
    let driver: MongoDriver
    let worker: OutboxBlockingWorker
    let client: MongoPointer
    let handle: MongoPointer
    private let slots: MongoClientSlots
    private let hooks = Mutex<[@Sendable () -> Void]>([])

    init(driver: MongoDriver, worker: OutboxBlockingWorker, client: MongoPointer, handle: MongoPointer, slots: MongoClientSlots) {
        self.driver = driver
        self.worker = worker
        self.client = client
        self.handle = handle
        self.slots = slots
    }

    /// Runs `hook` after the transaction commits (never after an abort).
    func afterCommit(_ hook: @escaping @Sendable () -> Void) {
        hooks.withLock { $0.append(hook) }
    }

    func runCommitHooks() {
        for hook in hooks.withLock({ $0 }) { hook() }
    }

    /// Commits; a commit whose result is unknown (the connection dropped) is committed again,
    /// which the server makes idempotent.
    func commit(until deadline: ContinuousClock.Instant) async throws {
        while true {
            do {
                try await worker.run { [driver, handle] in try driver.commit(session: handle.pointer) }
                return
            } catch let error as MongoError where error.isUnknownCommitResult && ContinuousClock.now < deadline {
                continue
            }
        }
    }

    func end() async {
        await abortAndEnd()
    }

    /// Ends the session and gives its pooled client (and slot) back.
    func abortAndEnd() async {
        _ = try? await worker.run { [driver, client, handle] in driver.abortAndEnd(client: client.pointer, session: handle.pointer) }
        slots.release()
    }
}
