import Synchronization

/// The partition count a store read once from its own tables: it never changes after the first
/// migration, so enqueue reads it once per store object.
package final class OutboxPartitionCountCache: Sendable {
    private let cached = Mutex<Int?>(nil)
    /// The store's name in the error, e.g. "PostgreSQL".
    private let storeName: String

    package init(storeName: String) { self.storeName = storeName }

    /// The count, read with `load` the first time.
    ///
    /// - Throws: ``OutboxError`` with code `.schemaMismatch` when the store has no partitions
    ///   (`migrate` has not run), or what `load` throws.
    package func value(_ load: () async throws -> Int) async throws -> Int {
        if let count = cached.withLock({ $0 }) { return count }
        return try remember(try await load())
    }

    /// Like ``value(_:)`` for stores whose driver is synchronous (SQLite).
    package func value(_ load: () throws -> Int) throws -> Int {
        if let count = cached.withLock({ $0 }) { return count }
        return try remember(try load())
    }

    private func remember(_ count: Int) throws -> Int {
        guard count > 0 else {
            throw OutboxError(code: .schemaMismatch, operation: "enqueue",
                              message: "The \(storeName) outbox has no partitions; run `outbox migrate` first.")
        }
        cached.withLock { $0 = count }
        return count
    }
}
