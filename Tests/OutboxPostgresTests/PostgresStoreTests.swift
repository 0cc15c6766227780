import Foundation
import Logging
import Outbox
@testable import OutboxPostgres
import OutboxTestSupport
import OutboxTesting
import PostgresNIO
import Synchronization
import Testing

@Suite("PostgreSQL store", .enabled(if: TestServer.postgres.shouldRun, "set OUTBOX_POSTGRES_URL (scripts/test.sh does)"), .closesAtEnd)
struct PostgresStoreTests {
    /// Every statement the relay runs walks an index; none scans the table, whatever the backlog.
    ///
    /// The plans are the server's own, of the statements as the store runs them: the store is
    /// opened as a role whose sessions load `auto_explain` with nested statements, so each plan —
    /// the claim function's body included — is written to the server's log, which the test reads
    /// back with `pg_read_file` (PostgresNIO drops notices, so they cannot come to the client).
    /// The log is the one scripts/start-postgres.sh gives the server, beside its data folder.
    @Test func relayStatementsUseIndexes() async throws {
        let url = try TestServer.requireURL()
        let admin = try await PostgresStoreUnderTest(partitionCount: 16)
        let role = "explain_\(UUID().uuidString.prefix(8).lowercased())"
        for statement in [
            "CREATE ROLE \(role) LOGIN SUPERUSER",
            "ALTER ROLE \(role) SET session_preload_libraries = 'auto_explain'",
            "ALTER ROLE \(role) SET auto_explain.log_min_duration = 0",
            "ALTER ROLE \(role) SET auto_explain.log_nested_statements = on",
        ] {
            try await admin.client.query(PostgresQuery(unsafeSQL: statement), logger: admin.logger)
        }
        let plans = try await ServerLogPlans(admin.client, logger: admin.logger)
        var explainURL = url
        explainURL.username = role
        let subject = try await PostgresStoreUnderTest(partitionCount: 16, schema: admin.schema + "_x", url: explainURL)
        do {
            for start in stride(from: 0, to: 20_000, by: 2_000) {
                try await subject.enqueueCommitted((start..<start + 2_000).map { OutboxMessage(topic: "t", key: "k\($0 % 500)", text: "\($0)") })
            }
            // No ANALYZE: a fresh table without statistics is where the planner went wrong before.
            let store = subject.postgres
            #expect(store.names.messages.hasSuffix("\"outbox_messages\""))
            let grant = try await store.heartbeat(OutboxHeartbeat(relayID: "explain", leaseDuration: .seconds(30)))
            try await plans.skipToEnd()
            let claimed = try await store.claim(partitions: grant.owned.sorted(), limit: 500, maximumBytes: 1 << 26, now: Date(),
                                                excluding: Array(1...20))
            #expect(claimed.count == 500)
            let claimPlans = try await plans.take()
            let now = Date()
            var acknowledgement = OutboxAcknowledgement(relayID: "explain", retainDelivered: false, now: now)
            acknowledgement.delivered = claimed.prefix(200).map { OutboxMessageReference(sequence: $0.sequence, partition: $0.partition) }
            acknowledgement.retries = claimed.dropFirst(200).prefix(10).map {
                OutboxAcknowledgement.Retry(sequence: $0.sequence, partition: $0.partition, availableAt: now.addingTimeInterval(60), error: "x")
            }
            acknowledgement.deadLetters = claimed.dropFirst(210).prefix(10).map {
                OutboxAcknowledgement.DeadLetter(sequence: $0.sequence, partition: $0.partition, error: "x")
            }
            let result = try await store.acknowledge(acknowledgement)
            #expect(result.applied == 220)
            let acknowledgePlans = try await plans.take()
            _ = try await store.deadLetters(limit: 50, afterSequence: nil)
            let deadLetterPlans = try await plans.take()
            _ = try await store.removeDelivered(finishedBefore: now, limit: 1000)
            let cleanupPlans = try await plans.take()
            // The hot path (claim, acknowledgement) walks indexes in order: no table scan, no
            // bitmap scan, no sort. Listing dead letters and the cleanup may bitmap-scan their own
            // partial indexes (dead and retained rows only, never the pending backlog), as the
            // planner prefers for the few rows it expects here; they never scan the table.
            for (name, captured, isHotPath) in [("claim", claimPlans, true), ("acknowledge", acknowledgePlans, true),
                                                ("dead letters", deadLetterPlans, false), ("cleanup", cleanupPlans, false)] {
                let onMessages = captured.filter { $0.contains("outbox_messages") }
                #expect(!onMessages.isEmpty, "no plan of the \(name) statements arrived")
                for plan in onMessages {
                    #expect(!plan.contains("Seq Scan on outbox_messages"), "\(name) scans the table:\n\(plan)")
                    if isHotPath {
                        #expect(!plan.contains("Bitmap Heap Scan on outbox_messages") && !plan.contains("Sort  ("),
                                "\(name) does not walk an index in order:\n\(plan)")
                    } else {
                        #expect(!plan.contains("outbox_messages_sequence_idx on") && !plan.contains("Bitmap Index Scan on outbox_messages_sequence_idx "),
                                "\(name) walks the pending rows:\n\(plan)")
                    }
                }
            }
            // The functions' bodies are among them: the claim's ordered walk of the pending index,
            // and the acknowledgement's delete by sequence.
            #expect(claimPlans.contains { $0.contains("Index Scan using") && $0.contains("Limit") })
            #expect(acknowledgePlans.contains { $0.contains("Delete on outbox_messages") && $0.contains("Index Scan using") })
            print("Plans of the relay statements on 20,000 pending rows:\n" + (claimPlans + acknowledgePlans).joined(separator: "\n"))
        } catch {
            try? await subject.close()
            _ = try? await admin.client.query(PostgresQuery(unsafeSQL: "DROP ROLE IF EXISTS \(role)"), logger: admin.logger)
            try? await admin.close()
            throw error
        }
        try await subject.close()
        try await admin.client.query(PostgresQuery(unsafeSQL: "DROP ROLE IF EXISTS \(role)"), logger: admin.logger)
        try await admin.close()
    }

    /// The longest schema and prefix `migrate` accepts also enqueue, wake the relay and publish
    /// (the NOTIFY channel `<prefix>_<schema>` is longer than PostgreSQL's 63 bytes).
    @Test func theLongestAcceptedNamesWorkEndToEnd() async throws {
        let schema = "s" + String(UUID().uuidString.lowercased().filter(\.isLetter).prefix(8)) + String(repeating: "x", count: 40)
        let subject = try await PostgresStoreUnderTest(partitionCount: 4, schema: String(schema.prefix(40)),
                                                       tablePrefix: String(repeating: "p", count: 40))
        let recorder = RecordingPublisher()
        let relay = RunningRelay(OutboxRelay(store: subject.store, publisher: recorder,
                                             configuration: .forTesting(pollInterval: .seconds(30)), logger: subject.logger))
        let messages = (0..<20).map { OutboxMessage(topic: "t", key: "k\($0 % 3)", text: "\($0)") }
        do {
            try await subject.enqueueCommitted(messages)
            // A 30 s poll interval: only the notification can bring these within the wait.
            try await waitUntil("the messages are published", timeout: .seconds(10)) { recorder.deliveryCount == messages.count }
        } catch {
            try? await relay.stop()
            try? await subject.close()
            throw error
        }
        try await relay.stop()
        try await subject.close()
        #expect(PostgresOutboxNames.channel(schema: String(schema.prefix(40)), tablePrefix: String(repeating: "p", count: 40)).utf8.count
                == PostgresOutboxNames.maximumChannelBytes)
        #expect(PostgresOutboxNames.channel(schema: "public", tablePrefix: "outbox") == "outbox_public", "short names keep their channel")
    }

    /// The schema fixes every column's type here, so the headers' encoding is what a foreign
    /// writer can damage: such a row is dead-lettered with its reason and the rest flow.
    @Test func damagedHeadersAreDeadLetteredAndTheRestFlows() async throws {
        let subject = try await PostgresStoreUnderTest(partitionCount: 4)
        atEnd { try? await subject.close() }
        let messages = (0..<4).map { OutboxMessage(topic: "t", key: "k\($0)", text: "message \($0)") }
        try await subject.enqueueCommitted(messages)
        try await subject.client.query(
            "UPDATE \(unescaped: subject.postgres.names.messages) SET headers = '\\x000000c8fffe'::bytea WHERE id = \(messages[2].id)",
            logger: subject.logger)
        let recorder = RecordingPublisher()
        let running = RunningRelay(OutboxRelay(store: subject.store, publisher: recorder, configuration: .forTesting(), logger: subject.logger))
        try await waitUntil("the healthy messages are published") { recorder.deliveryCount >= 3 }
        try await waitUntil("the damaged row is dead-lettered") { try await subject.store.status(now: Date()).dead == 1 }
        try await running.stop()
        let dead = try await subject.store.deadLetters(limit: 10, afterSequence: nil)
        #expect(dead.map(\.record.message.id) == [messages[2].id])
        #expect(dead.first?.record.lastError?.contains("the headers (6 bytes) are not an outbox header encoding") == true)
    }

    /// A schema older than the build is named at status, which a relay command checks before it
    /// starts: before, the relay started and logged its failed calls.
    @Test func aSchemaOlderThanTheBuildIsNamed() async throws {
        let subject = try await PostgresStoreUnderTest(partitionCount: 4)
        atEnd { try? await subject.close() }
        let latest = PostgresSchema.latestVersion
        try await subject.client.query(PostgresQuery(unsafeSQL: "DELETE FROM \(subject.postgres.names.migrations) WHERE version = \(latest)"),
                                       logger: subject.logger)
        let refused = await #expect(throws: OutboxError.self) { try await subject.postgres.status(now: Date()) }
        #expect(refused?.code == .schemaMismatch)
        #expect(refused?.message.contains("version \(latest - 1)") == true && refused?.message.contains("outbox migrate") == true,
                "\(String(describing: refused))")
        try await subject.client.query(PostgresQuery(unsafeSQL: "INSERT INTO \(subject.postgres.names.migrations) (version) VALUES (\(latest))"),
                                       logger: subject.logger)
        _ = try await subject.postgres.status(now: Date())
    }

    /// The store's own transaction rolls the messages back with the application's rows when its
    /// body throws, and hands the body's error on as the client's `withTransaction` does.
    @Test func theStoresTransactionRollsBackTheMessagesWithTheRows() async throws {
        let subject = try await PostgresStoreUnderTest(partitionCount: 4)
        atEnd { try? await subject.close() }
        struct Refused: Error {}
        let error = await #expect(throws: PostgresTransactionError.self) {
            try await subject.postgres.withTransaction(logger: subject.logger) { transaction in
                try await transaction.connection.query(
                    PostgresQuery(unsafeSQL: "INSERT INTO \(subject.schema).orders (id, note) VALUES (gen_random_uuid(), 'rolled back')"),
                    logger: subject.logger)
                try await transaction.enqueue(OutboxMessage(topic: "t", key: "k", text: "rolled back"))
                throw Refused()
            }
        }
        #expect(error?.closureError is Refused, "\(String(describing: error))")
        let rows = try await subject.client.query(PostgresQuery(unsafeSQL: "SELECT count(*)::int FROM \(subject.schema).orders"), logger: subject.logger)
        var orders = -1
        for try await count in rows.decode(Int.self) { orders = count }
        #expect(orders == 0)
        #expect(try await subject.store.status(now: Date()).pending == 0, "the message rolled back with the order")
    }

    /// An application upgraded before `outbox migrate` finds no enqueue function: several
    /// messages (version 6's function) get one sentence naming the migration, on both enqueue
    /// paths, and nothing is written. One message needs only the table (a statement of its own).
    @Test func anEnqueueBeforeTheMigrationNamesIt() async throws {
        let subject = try await PostgresStoreUnderTest(partitionCount: 4)
        atEnd { try? await subject.close() }
        for function in [subject.postgres.names.enqueueFunction, subject.postgres.names.enqueueOneFunction] {
            try await subject.client.query(PostgresQuery(unsafeSQL: "DROP FUNCTION \(function)"), logger: subject.logger)
        }
        let two = [OutboxMessage(topic: "t", key: "a", text: "early"), OutboxMessage(topic: "t", key: "b", text: "early")]
        let direct = await #expect(throws: PostgresTransactionError.self) {
            try await subject.postgres.withTransaction(logger: subject.logger) { transaction in
                try await transaction.enqueue(two)
            }
        }
        let checked = await #expect(throws: PostgresTransactionError.self) {
            try await subject.client.withTransaction(logger: subject.logger) { connection in
                try await subject.postgres.enqueue(two, in: connection)
            }
        }
        for error in [direct, checked] {
            let outbox = error?.closureError as? OutboxError
            #expect(outbox?.code == .schemaMismatch && outbox?.message.contains("outbox migrate") == true, "\(String(describing: error))")
        }
        #expect(try await subject.store.status(now: Date()).pending == 0)
        try await subject.postgres.withTransaction(logger: subject.logger) { transaction in
            try await transaction.enqueue(OutboxMessage(topic: "t", text: "one"))
        }
        #expect(try await subject.store.status(now: Date()).pending == 1)
    }

    /// The enqueue's statements are prepared per connection, named by their text: two outboxes
    /// in different schemas, enqueued in one transaction on one connection, each get their own
    /// message (one and several at a time).
    @Test func twoOutboxesOnOneConnectionKeepTheirOwnStatements() async throws {
        let first = try await PostgresStoreUnderTest(partitionCount: 4)
        atEnd { try? await first.close() }
        let second = try PostgresOutboxStore(client: first.client, configuration: .init(schema: first.schema, tablePrefix: "other",
                                                                                       partitionCount: 4),
                                             logger: first.logger)
        try await second.migrate()
        for round in 0..<3 {
            try await first.client.withTransaction(logger: first.logger) { connection in
                try await first.postgres.enqueue(OutboxMessage(topic: "first", text: "\(round)"), in: connection)
                try await second.enqueue(OutboxMessage(topic: "second", text: "\(round)"), in: connection)
                try await second.enqueue([OutboxMessage(topic: "second", text: "\(round)a"), OutboxMessage(topic: "second", text: "\(round)b")],
                                         in: connection)
            }
        }
        #expect(try await first.store.status(now: Date()).pending == 3)
        #expect(try await second.status(now: Date()).pending == 9)
        for (table, topic) in [(first.postgres.names.messages, "first"), (second.names.messages, "second")] {
            let rows = try await first.client.query(PostgresQuery(unsafeSQL: "SELECT count(*)::int FROM \(table) WHERE topic <> '\(topic)'"),
                                                    logger: first.logger)
            for try await stray in rows.decode(Int.self) { #expect(stray == 0, "\(table) holds another outbox's messages") }
        }
    }

    /// postgres-nio remembers a failed preparation on its connection for good. A first enqueue
    /// inside a transaction the application had already aborted fails, as it must; the next
    /// transaction on the same connection must still enqueue.
    @Test func anEnqueueInAnAbortedTransactionDoesNotSpoilTheConnection() async throws {
        let subject = try await PostgresStoreUnderTest(partitionCount: 4)
        atEnd { try? await subject.close() }
        try await subject.client.withConnection { connection in
            for messages in [[OutboxMessage(topic: "t", text: "lost")], [OutboxMessage(topic: "t", text: "a"), OutboxMessage(topic: "t", text: "b")]] {
                try await connection.query("BEGIN", logger: subject.logger)
                _ = try? await connection.query("SELECT 1 / 0", logger: subject.logger)
                await #expect(throws: OutboxError.self) {
                    try await subject.postgres.enqueue(messages, in: connection, knownInTransaction: true)
                }
                try await connection.query("ROLLBACK", logger: subject.logger)
                try await connection.query("BEGIN", logger: subject.logger)
                try await subject.postgres.enqueue(messages, in: connection, knownInTransaction: true)
                try await connection.query("COMMIT", logger: subject.logger)
            }
        }
        #expect(try await subject.store.status(now: Date()).pending == 3)
    }

    /// An enqueue outside a transaction block would commit the message alone: it is refused with
    /// one sentence, and nothing is written.
    @Test func enqueueOutsideATransactionIsRefused() async throws {
        let subject = try await PostgresStoreUnderTest(partitionCount: 4)
        atEnd { try? await subject.close() }
        let error = await #expect(throws: OutboxError.self) {
            try await subject.client.withConnection { connection in
                try await subject.postgres.enqueue([OutboxMessage(topic: "t", text: "alone")], in: connection)
            }
        }
        #expect(error?.code == .invalidConfiguration)
        #expect(error?.description.contains("must run inside a transaction") == true, "\(String(describing: error))")
        let status = try await subject.store.status(now: Date())
        #expect(status.pending == 0, "nothing was committed")
    }
}

/// Reads the plans `auto_explain` wrote to the test server's log since the last read.
private final class ServerLogPlans: Sendable {
    private let client: PostgresClient
    private let logger: Logger
    private let path: String
    private let offset = Mutex<Int64>(0)

    init(_ client: PostgresClient, logger: Logger) async throws {
        self.client = client
        self.logger = logger
        let rows = try await client.query("SELECT current_setting('data_directory') || '/../server.log'", logger: logger)
        var path = ""
        for try await value in rows.decode(String.self) { path = value }
        self.path = path
        try await skipToEnd()
    }

    private func size() async throws -> Int64 {
        let rows = try await client.query("SELECT (pg_stat_file(\(path))).size", logger: logger)
        var size: Int64 = 0
        for try await value in rows.decode(Int64.self) { size = value }
        return size
    }

    func skipToEnd() async throws {
        let end = try await size()
        offset.withLock { $0 = end }
    }

    /// The plans logged since the last call, one text each.
    func take() async throws -> [String] {
        // auto_explain logs at the end of each statement; give the log writer a moment.
        try await Task.sleep(for: .milliseconds(200))
        let start = offset.withLock { $0 }
        let end = try await size()
        offset.withLock { $0 = end }
        guard end > start else { return [] }
        let rows = try await client.query("SELECT pg_read_file(\(path), \(start), \(end - start))", logger: logger)
        var text = ""
        for try await value in rows.decode(String.self) { text = value }
        return text.components(separatedBy: "LOG:  duration:").dropFirst().map { $0 }
    }
}
