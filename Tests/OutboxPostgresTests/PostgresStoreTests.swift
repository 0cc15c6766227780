import Foundation
import Logging
import Outbox
@testable import OutboxPostgres
import OutboxTesting
import PostgresNIO
import Testing

@Suite("PostgreSQL store", .enabled(if: PostgresTestServer.shouldRun, "set OUTBOX_POSTGRES_URL (scripts/test.sh does)"))
struct PostgresStoreTests {
    /// Every relay query walks an index; none scans the table, whatever the backlog.
    @Test func relayQueriesUseIndexes() async throws {
        let subject = try await PostgresStoreUnderTest(partitionCount: 16)
        defer { Task { try? await subject.close() } }
        for start in stride(from: 0, to: 20_000, by: 2_000) {
            try await subject.enqueueCommitted((start..<start + 2_000).map { OutboxMessage(topic: "t", key: "k\($0 % 500)", text: "\($0)") })
        }
        let names = subject.postgres.names
        // No ANALYZE: a fresh table without statistics is where the planner went wrong before.
        let now = "now()"
        let queries = [
            "claim": """
                SELECT m.sequence FROM \(names.messages) AS m
                WHERE m.state = 0 AND m.available_at <= \(now) AND m.partition = ANY('{0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15}'::int[])
                  AND m.sequence <> ALL('{1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20}'::bigint[])
                  AND NOT EXISTS (SELECT 1 FROM \(names.messages) AS e WHERE e.state = 0 AND e.attempts > 0 AND e.partition = m.partition
                      AND e.message_key = m.message_key AND e.sequence < m.sequence AND e.available_at > \(now))
                ORDER BY m.sequence LIMIT 500
                """,
            "delete delivered": "DELETE FROM \(names.messages) WHERE sequence = ANY('{1,2,3}'::bigint[]) AND state = 0",
            "reschedule": """
                UPDATE \(names.messages) AS m SET attempts = m.attempts + 1 FROM unnest('{1,2}'::bigint[]) AS u(sequence)
                WHERE m.sequence = u.sequence AND m.state = 0
                """,
            "dead letters": "SELECT sequence FROM \(names.messages) WHERE state = 1 AND sequence > 0 ORDER BY sequence LIMIT 50",
            "cleanup": "SELECT sequence FROM \(names.messages) WHERE state = 2 AND finished_at < now() ORDER BY finished_at LIMIT 1000",
        ]
        var report = ""
        for (name, sql) in queries.sorted(by: { $0.key < $1.key }) {
            var plan: [String] = []
            try await subject.client.withTransaction(logger: subject.logger) { connection in
                // The planner settings the claim function runs with (its SET clauses).
                try await connection.query("""
                    SELECT set_config(split_part(setting, '=', 1), split_part(setting, '=', 2), true)
                    FROM pg_proc, unnest(proconfig) AS setting
                    WHERE oid = \(names.claimFunction + "(int[], int, bigint, timestamptz, bigint[], bigint, int[])")::regprocedure
                      AND setting NOT LIKE 'search_path=%'
                    """, logger: subject.logger)
                let rows = try await connection.query(PostgresQuery(unsafeSQL: "EXPLAIN " + sql), logger: subject.logger)
                for try await line in rows.decode(String.self) { plan.append(line) }
            }
            report += "\n\(name):\n" + plan.joined(separator: "\n")
            #expect(!plan.contains { $0.contains("Seq Scan on outbox_messages") || $0.contains("Bitmap Heap Scan on outbox_messages") || $0.contains("Sort  (") },
                    "\(name) scans the table:\n\(plan.joined(separator: "\n"))")
        }
        print("EXPLAIN of the relay queries on 20,000 pending rows:" + report)
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
        defer { Task { try? await subject.close() } }
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

    /// An enqueue outside a transaction block would commit the message alone: it is refused with
    /// one sentence, and nothing is written.
    @Test func enqueueOutsideATransactionIsRefused() async throws {
        let subject = try await PostgresStoreUnderTest(partitionCount: 4)
        defer { Task { try? await subject.close() } }
        let error = await #expect(throws: OutboxError.self) {
            try await subject.client.withConnection { connection in
                try await subject.postgres.enqueue([OutboxMessage(topic: "t", text: "alone")], on: connection, logger: subject.logger)
            }
        }
        #expect(error?.code == .invalidConfiguration)
        #expect(error?.description.contains("must run inside a transaction") == true, "\(String(describing: error))")
        let status = try await subject.store.status(now: Date())
        #expect(status.pending == 0, "nothing was committed")
    }
}
