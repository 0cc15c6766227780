import Foundation
import Logging
import Outbox
import OutboxMongo
import OutboxTestSupport
import OutboxTesting
import ServiceLifecycle

extension TestServer {
    /// The suites' server, parsed; fails naming the variable and the script when it is missing.
    static func requireConfiguration() throws -> MongoConfiguration { try MongoConnectionURL(TestServer.mongo.requireURL()).configuration }
}

/// Each check gets its own collection prefix, a client and the store with its change stream.
struct MongoHarness: OutboxStoreHarness {
    var name: String { "MongoDB" }
    var wakeUpBound: Duration { .seconds(2) }

    func makeStore() async throws -> any OutboxStoreUnderTest {
        try await MongoStoreUnderTest(partitionCount: 16)
    }
}

final class MongoStoreUnderTest: OutboxStoreUnderTestWithOpenTransactions {
    let client: MongoClient
    let mongo: MongoOutboxStore
    let prefix: String
    let logger: Logger
    private let group: ServiceGroup
    private let running: Task<Void, any Error>
    var orders: MongoCollection { client.collection("\(prefix)_orders") }

    init(partitionCount: Int, prefix: String = "t_\(UUID().uuidString.prefix(8).lowercased())",
         configuration: MongoConfiguration? = nil, messageLimits: OutboxMessageLimits? = nil) async throws {
        let configuration = try configuration ?? TestServer.requireConfiguration()
        logger = OutboxStoreConformance.defaultLogger
        client = try MongoClient(configuration: configuration)
        self.prefix = prefix
        var storeConfiguration = MongoOutboxStore.Configuration(tablePrefix: prefix, partitionCount: partitionCount, maximumPollInterval: .milliseconds(500))
        storeConfiguration.messageLimits = messageLimits ?? OutboxStoreConformance.messageLimits
        mongo = try MongoOutboxStore(client: client, configuration: storeConfiguration, logger: logger)
        try await mongo.migrate()
        let group = ServiceGroup(services: [mongo], logger: logger)
        self.group = group
        running = Task { try await group.run() }
        try await waitUntil("the change stream is open", timeout: .seconds(30)) { self.mongo.isWakeUpConnected }
    }

    var store: any OutboxStore { mongo }

    func enqueueCommitted(_ messages: [OutboxMessage]) async throws {
        try await client.withTransaction { session in
            try await self.orders.insertOne(["note": "order"], session: session)
            try await self.mongo.enqueue(messages, in: session)
        }
    }

    /// Writers to one partition both write its counter document: the second conflicts and runs
    /// again after the first commits.
    var writersToOnePartitionWait: Bool { true }

    /// No business document here: on the SecantusDB test server, a held-open transaction that had
    /// also inserted into `orders` was aborted when the later transaction inserted there too, and
    /// ran again after it (A2 then came first; the check failed every time).
    func enqueueHeldOpen(_ messages: [OutboxMessage], enqueued: @Sendable () -> Void, mayCommit: @Sendable () -> Bool) async throws {
        try await client.withTransaction { session in
            try await self.mongo.enqueue(messages, in: session)
            enqueued()
            while !mayCommit() { try await Task.sleep(for: .milliseconds(10)) }
        }
    }

    func enqueueRolledBack(_ messages: [OutboxMessage]) async throws {
        struct Rollback: Error {}
        do {
            try await client.withTransaction { session in
                try await self.orders.insertOne(["note": "order"], session: session)
                try await self.mongo.enqueue(messages, in: session)
                throw Rollback()
            }
        } catch is Rollback {}
    }

    func close() async throws {
        await group.triggerGracefulShutdown()
        try? await running.value
        for name in ["orders", "messages", "partitions", "leases", "relays", "meta"] {
            _ = try? await client.runCommand(["drop": .string("\(prefix)_\(name)")])
        }
    }
}
