package import Logging

/// What every store object holds the same way: its configuration, its logger, the partition
/// count it read once, the partitions its claims keep finding held, and its error wrapper. A
/// store keeps one and speaks its driver beside it.
package final class OutboxStoreKit: Sendable {
    package let configuration: OutboxStoreConfiguration
    package let logger: Logger
    /// The partition count, read once by enqueue.
    package let partitionCounts: OutboxPartitionCountCache
    /// Partitions the claims keep finding held by enqueue transactions (server stores).
    package let starvation = OutboxPartitionStarvation()
    /// Runs operations, turning driver errors into ``OutboxError``s.
    package let errors: OutboxStoreOperation

    /// - Parameters:
    ///   - store: the store's name in sentences, e.g. "PostgreSQL".
    ///   - map: turns a driver error of an operation into the store's ``OutboxError``.
    package init(store: String, configuration: OutboxStoreConfiguration, logger: Logger,
                 map: @escaping @Sendable (_ error: any Error, _ operation: String) -> any Error) {
        self.configuration = configuration
        self.logger = logger
        partitionCounts = OutboxPartitionCountCache(storeName: store)
        errors = OutboxStoreOperation(map: map)
    }

    /// Runs one operation of the store; see ``OutboxStoreOperation``.
    package func perform<T>(_ operation: String, _ body: () async throws -> T) async throws -> T {
        try await errors.perform(operation, body)
    }
}

/// A store built on an ``OutboxStoreKit``: its configuration and logger are the kit's.
package protocol OutboxKitStore {
    var kit: OutboxStoreKit { get }
}

extension OutboxKitStore {
    package var configuration: OutboxStoreConfiguration { kit.configuration }
    package var logger: Logger { kit.logger }
}
