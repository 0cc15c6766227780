import Foundation
public import Logging
public import Outbox
import ServiceLifecycle
import Synchronization

/// The MongoDB outbox store, over libmongoc.
///
/// Enqueue inside the application's transaction, next to its business document:
///
/// ```swift
/// try await client.withTransaction { session in
///     try await client.collection("orders").insertOne(order, session: session)
///     try await store.enqueue([message], in: session)
/// }
/// ```
///
/// Sequences and commit order: each partition has a document holding its last counter; an
/// enqueue writes the documents of its partitions first, inside the transaction. Two open
/// transactions cannot both change one document (the second gets a write conflict and
/// ``MongoClient/withTransaction(retryTimeout:_:)`` runs it again), so within a partition counters
/// are taken in commit order, and the relay's snapshot reads never see a later message of a
/// partition without the earlier ones. Counters follow the clock (microseconds) and always exceed
/// the partition's last one; the sequence is `counter << 12 | partition`: unique, ordered within
/// each partition, and in enqueue order within a batch.
///
/// Wake-up: a change stream on the messages collection, run by ``run()`` (add the store to your
/// `ServiceGroup`); relays in the same process also wake at commit. Without a change stream
/// (a server that does not offer one, or the store not running as a service) relays poll the
/// partition counters adaptively.
public final class MongoOutboxStore: OutboxStore, OutboxKitStore, Sendable {
    /// Settings of the MongoDB store; see ``OutboxStoreConfiguration``. It uses `schema` (the
    /// database; default the client URL's), `tablePrefix` (of the collections), `partitionCount`,
    /// `messageLimits`, `pushWakeUps` (the change stream) and the poll intervals.
    public typealias Configuration = OutboxStoreConfiguration

    /// Bits of the sequence that hold the partition.
    static let partitionBits: Int64 = 12
    /// Counters count microseconds from 2020-01-01: 51 bits (the 63 minus the partition's 12) last until 2091.
    static let counterEpoch: Int64 = 1_577_836_800_000_000

    let client: MongoClient
    package let kit: OutboxStoreKit
    let messages: MongoCollection
    let partitions: MongoCollection
    let leases: MongoCollection
    let relays: MongoCollection
    let meta: MongoCollection
    let wakeUp: OutboxPolledWakeUp
    let watcher: MongoChangeWatcher

    /// Creates the store on a client the application also uses for its transactions.
    ///
    /// - Throws: ``OutboxError`` with code `.invalidConfiguration` for an invalid prefix, database
    ///   or partition count.
    public init(client: MongoClient, configuration: Configuration = .init(), logger: Logger) throws {
        let prefix = try OutboxStoreSupport.requireIdentifier(configuration.tablePrefix, what: "collection prefix", store: "MongoDB")
        let database = configuration.schema ?? client.configuration.database
        guard !database.isEmpty, database.utf8.count < 64, !database.contains(where: { "/\\. \"$".contains($0) }) else {
            throw OutboxError(code: .invalidConfiguration, operation: "configure MongoDB store",
                              message: "The MongoDB database name '\(database)' is not valid; use letters, digits, '_' and '-'.")
        }
        self.client = client
        kit = OutboxStoreKit(store: "MongoDB", configuration: configuration, logger: logger, map: MongoStoreErrors.map)
        messages = client.collection("\(prefix)_messages", in: database)
        partitions = client.collection("\(prefix)_partitions", in: database)
        leases = client.collection("\(prefix)_leases", in: database)
        relays = client.collection("\(prefix)_relays", in: database)
        meta = client.collection("\(prefix)_meta", in: database)
        wakeUp = OutboxPolledWakeUp(configuration)
        watcher = MongoChangeWatcher(client: client, database: database, collection: "\(prefix)_messages")
    }

    /// Whether the change stream is open; while it is not, relays poll.
    public var isWakeUpConnected: Bool { watcher.isWatching }

    /// Keeps the change stream open (reopening it after errors) until shutdown.
    public func run() async throws {
        guard configuration.pushWakeUps else {
            try? await gracefulShutdown()
            return
        }
        let wakeUp = self.wakeUp
        await withGracefulShutdownHandler {
            await watcher.run(onInsert: { wakeUp.committed() }, logger: logger)
        } onGracefulShutdown: {
            self.watcher.stop()
        }
    }

    // MARK: - Enqueue

    /// Adds a message to the outbox inside the application's transaction.
    ///
    /// See ``enqueue(_:in:)-([OutboxMessage],_)``.
    public func enqueue(_ message: OutboxMessage, in session: MongoSession) async throws {
        try await enqueue([message], in: session)
    }

    /// Adds messages to the outbox inside the application's transaction, in order.
    ///
    /// If the transaction aborts, the messages were never there; relays in this process wake at
    /// commit. Costs one round trip per distinct partition plus one insert.
    ///
    /// - Throws: ``OutboxError`` `.invalidMessage` for a message that breaks the limits or whose
    ///   id is already in the outbox; `.schemaMismatch` when `migrate()` has not run; a
    ///   ``MongoError`` write conflict, which ``MongoClient/withTransaction(retryTimeout:_:)``
    ///   answers by running the transaction again.
    public func enqueue(_ messages: [OutboxMessage], in session: MongoSession) async throws {
        guard !messages.isEmpty else { return }
        try await performInTransaction("enqueue") {
            let partitionCount = try await self.partitionCount()
            let prepared = try OutboxPreparedMessage.prepare(messages, limits: configuration.messageLimits, partitionCount: partitionCount)
            let partitionOf = prepared.map(\.partition)
            // Writing the partitions' documents first is what orders commits per partition (see
            // above); the write also returns each partition's last sequence.
            let touched = Array(Set(partitionOf)).sorted()
            var last: Int64 = 0
            for partition in touched {
                guard let counter = try await partitions.findOneAndUpdate(
                    ["_id": .int64(Int64(partition))], ["$inc": ["writes": 1]], session: session)
                else {
                    throw OutboxError(code: .schemaMismatch, operation: "enqueue",
                                      message: "The MongoDB outbox has no partition \(partition); run `outbox migrate` first.")
                }
                last = max(last, counter["next"]?.int64Value ?? 0)
            }
            // Counters are microseconds since 2020 where the clock allows, so the batch's messages
            // come out in enqueue order across partitions too, and always above every touched
            // partition's last counter.
            let first = max(last + 1, MongoTime.microseconds(Date()) - Self.counterEpoch)
            var documents: [BSONDocument] = []
            var lastOfPartition: [Int: Int64] = [:]
            for (index, item) in prepared.enumerated() {
                let (message, partition) = (item.message, item.partition)
                let counter = first + Int64(index)
                lastOfPartition[partition] = counter
                let created = MongoTime.microseconds(message.createdAt)
                documents.append([
                    "_id": .int64(counter << Self.partitionBits | Int64(partition)),
                    "id": .uuid(message.id), "topic": .string(message.topic),
                    "key": message.key.map { .string($0) } ?? .null, "type": message.type.map { .string($0) } ?? .null,
                    "payload": .bytes(message.payload), "headers": .bytes(item.encodedHeaders),
                    "partition": .int64(Int64(partition)), "createdAt": .int64(created), "availableAt": .int64(OutboxStoreSupport.dueAtOnceMicroseconds),
                    "attempts": 0, "lastError": .null, "state": .state(.pending), "finishedAt": .null,
                ])
            }
            try await partitions.update(lastOfPartition.map { partition, counter in
                (["_id": .int64(Int64(partition))], ["$set": ["next": .int64(counter)]], false, false)
            }, session: session)
            try await self.messages.insertMany(documents, session: session)
        }
        let wakeUp = self.wakeUp
        session.afterCommit { wakeUp.committed() }
    }

    func partitionCount() async throws -> Int {
        try await kit.partitionCounts.value {
            Int(try await meta.find(["_id": "schema"], limit: 1).first?["partitions"]?.int64Value ?? 0)
        }
    }

    // MARK: - Wake-up

    /// Queries the wake-up poller has made so far (it polls only while no notification path works).
    public var pollQueries: Int { wakeUp.probeCount }

    public func waitForNewMessages(timeout: Duration) async {
        // The change stream signals commits of every process; the probe stands in while it is down.
        let partitions = self.partitions
        let probe: (@Sendable () async -> Int64?)? = watcher.isWatching ? nil : { @Sendable in
            let total = try? await partitions.aggregate([["$group": ["_id": nil, "total": ["$sum": "$next"]]]])
            return total?.first?["total"]?.int64Value
        }
        await wakeUp.wait(timeout: timeout, probe: probe)
    }

    // MARK: - Errors

    /// Runs `body`, turning driver errors into ``OutboxError``s that name what to fix.
    func perform<T>(_ operation: String, _ body: () async throws -> T) async throws -> T {
        try await kit.perform(operation, body)
    }

    /// Like ``perform(_:_:)``, but lets transient transaction errors through unchanged, so the
    /// enclosing `withTransaction` can run the transaction again.
    func performInTransaction<T>(_ operation: String, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as MongoError where error.isTransientTransactionError {
            throw error
        } catch {
            throw MongoStoreErrors.map(error, operation: operation)
        }
    }
}

/// Times are stored as integer microseconds since 1970 (``OutboxStoreSupport``).
enum MongoTime {
    static func microseconds(_ date: Date) -> Int64 { OutboxStoreSupport.microseconds(date) }
    static func date(_ microseconds: Int64) -> Date { OutboxStoreSupport.date(microseconds: microseconds) }
}
