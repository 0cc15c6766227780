/// Runs one store operation and turns whatever the driver threw into an ``OutboxError`` that
/// names what to fix and holds no bound values: every store wraps every call this way.
package struct OutboxStoreOperation: Sendable {
    /// Turns a driver error of `operation` into the store's ``OutboxError``.
    package let map: @Sendable (_ error: any Error, _ operation: String) -> any Error

    package init(map: @escaping @Sendable (_ error: any Error, _ operation: String) -> any Error) {
        self.map = map
    }

    package func perform<T>(_ operation: String, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch {
            throw map(error, operation)
        }
    }
}

extension OutboxStoreOperation {
    /// The frame of every store's `migrate`: the partition count checked, then `body` run as the
    /// "migrate" operation.
    package func migrate(partitionCount: Int, _ body: () async throws -> Void) async throws {
        try OutboxStoreSupport.checkPartitionCount(partitionCount)
        try await perform("migrate", body)
    }
}
