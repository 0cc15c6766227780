import Foundation
import Outbox
@testable import OutboxMySQL
import OutboxTestSupport
import OutboxTesting
import Testing

@Suite("MySQL/MariaDB store", .enabled(if: TestServer.mariadb.shouldRun, "set OUTBOX_MYSQL_URL (scripts/test.sh does)"), .closesAtEnd)
struct MySQLStoreTests {
    /// SQL metacharacters and 4-byte UTF-8 in every text field, and every byte value in the
    /// payload, come back byte-exact: values are bound, never spliced into SQL.
    @Test func hostileTextIsStoredByteExact() async throws {
        let subject = try await MySQLStoreUnderTest(partitionCount: 4)
        atEnd { try? await subject.close() }
        let hostile = "'; DROP TABLE users; -- \" ` \\ %_ ? $1 /* */ 😀𝄞 \u{1F9D1}\u{200D}\u{1F4BB}"
        let message = OutboxMessage(
            topic: "orders-😀'\"`", key: hostile, type: hostile,
            payload: Array(0...255) + Array(hostile.utf8),
            headers: [OutboxHeader(hostile, hostile), OutboxHeader("emoji-🚀", "𝄞")])
        try await subject.enqueueCommitted([message])
        let records = try await subject.mysql.claim(partitions: Array(0..<4), limit: 10, now: Date())
        try #require(records.count == 1)
        let stored = records[0].message
        #expect(stored.id == message.id)
        #expect(Array(stored.topic.utf8) == Array(message.topic.utf8))
        #expect(Array(stored.key!.utf8) == Array(hostile.utf8))
        #expect(Array(stored.type!.utf8) == Array(hostile.utf8))
        #expect(stored.payload == message.payload)
        #expect(stored.headers.filter { $0.name != "traceparent" } == message.headers)
        // The application's own statement, with the same hostile text bound.
        let echoed = try await subject.application.query("SELECT ?, CHAR_LENGTH(?)", [.text(hostile), .text(hostile)])
        #expect(echoed.rows[0][0].string == hostile)
        #expect(echoed.rows[0][1].int64 == Int64(hostile.unicodeScalars.count))
    }

    /// The enqueue of one partition's messages takes the commit-guard lock inside its insert
    /// (`INSERT … SELECT … LOCK IN SHARE MODE`), which inserts nothing when the guard row is
    /// missing: that must fail in one sentence, never commit a transaction without its messages.
    @Test func enqueueWithoutItsGuardRowFailsAndWritesNothing() async throws {
        let subject = try await MySQLStoreUnderTest(partitionCount: 4)
        atEnd { try? await subject.close() }
        try await subject.application.query("DELETE FROM `\(subject.prefix)_commit_guard`")
        for batch in [[OutboxMessage(topic: "t", key: "k", payload: [1])],
                      (0..<3).map { OutboxMessage(topic: "t", key: "k", payload: [UInt8($0)]) }] {
            let error = await #expect(throws: OutboxError.self) { try await subject.enqueueCommitted(batch) }
            #expect(error?.message.contains("has no commit-guard row") == true, "\(String(describing: error))")
        }
        let rows = try await subject.application.query("SELECT COUNT(*) FROM `\(subject.prefix)_messages`")
        #expect(rows.rows[0][0].int64 == 0)
    }

    /// Several messages of one key in one transaction (one statement with the guard lock) keep
    /// their order, and a claim in another transaction skips their partition while it is open.
    @Test func oneKeysMessagesKeepTheirOrderAndHoldTheirPartition() async throws {
        let subject = try await MySQLStoreUnderTest(partitionCount: 4)
        atEnd { try? await subject.close() }
        let earlier = OutboxMessage(topic: "t", key: "one-key", payload: [9])
        try await subject.enqueueCommitted([earlier])
        let messages = (0..<5).map { OutboxMessage(topic: "t", key: "one-key", payload: [UInt8($0)]) }
        let inserted = AsyncStream.makeStream(of: Void.self)
        let release = AsyncStream.makeStream(of: Void.self)
        let writing = Task {
            try await subject.application.withTransaction { connection in
                try await subject.mysql.enqueue(messages, in: connection)
                inserted.continuation.yield()
                for await _ in release.stream { break }
            }
        }
        for await _ in inserted.stream { break }
        // Open and uncommitted: its partition is locked, so a claim skips it, the committed
        // earlier message too (without the lock it would be claimed).
        #expect(try await subject.mysql.claim(partitions: Array(0..<4), limit: 10, now: Date()).isEmpty)
        release.continuation.yield()
        try await writing.value
        let claimed = try await subject.mysql.claim(partitions: Array(0..<4), limit: 10, now: Date())
        #expect(claimed.map(\.message.id) == [earlier.id] + messages.map(\.id))
    }

    /// A hostile table prefix is refused before any SQL is built.
    @Test func hostilePrefixIsRefused() throws {
        let pool = MySQLConnectionPool(configuration: try TestServer.requireConfiguration())
        for prefix in ["x`; DROP TABLE t; --", "", "1abc", String(repeating: "a", count: 41), "a b"] {
            #expect(throws: OutboxError.self) {
                _ = try MySQLOutboxStore(pool: pool, configuration: .init(tablePrefix: prefix), logger: .init(label: "test"))
            }
        }
    }

    /// Payloads up to the server's `max_allowed_packet` are stored byte-exact; one at the limit is
    /// refused with a clear error before it is sent, and the application's transaction goes on.
    @Test func payloadsAtAndAboveMaxAllowedPacket() async throws {
        let subject = try await MySQLStoreUnderTest(
            partitionCount: 4, messageLimits: OutboxMessageLimits(maximumPayloadBytes: 64 * 1024 * 1024))
        atEnd { try? await subject.close() }
        let packetLimit = Int(try await subject.application.query("SELECT @@max_allowed_packet").rows[0][0].int64!)
        var large = [UInt8](repeating: 0, count: packetLimit - 64 * 1024)
        large.withUnsafeMutableBufferPointer { bytes in
            for index in bytes.indices { bytes[index] = UInt8(truncatingIfNeeded: (index &* 2_654_435_761) >> 11) }
        }
        let fits = OutboxMessage(topic: "t", key: "big", payload: large)
        try await subject.enqueueCommitted([fits])

        let tooLarge = OutboxMessage(topic: "t", key: "big", payload: Array(repeating: 7, count: packetLimit))
        var refusal: OutboxError?
        try await subject.application.withTransaction { connection in
            try await connection.query("INSERT INTO \(subject.ordersTable) (note) VALUES (?)", ["kept"])
            do {
                try await subject.mysql.enqueue([tooLarge], in: connection)
            } catch let error as OutboxError {
                refusal = error
            }
        }
        let error = try #require(refusal)
        #expect(error.code == .invalidMessage)
        #expect(error.description.contains("max_allowed_packet"))
        let kept = try await subject.application.query("SELECT COUNT(*) FROM \(subject.ordersTable) WHERE note = ?", ["kept"])
        #expect(kept.rows[0][0].int64 == 1, "the application's transaction committed after the refusal")

        let records = try await subject.mysql.claim(partitions: Array(0..<4), limit: 10, now: Date())
        #expect(records.map(\.message.id) == [fits.id])
        #expect(records.first?.message.payload == large, "a payload just under max_allowed_packet comes back byte-exact")
    }

    /// A store limit wider than the schema's columns is refused at configuration time.
    @Test func limitsWiderThanColumnsAreRefused() throws {
        let pool = MySQLConnectionPool(configuration: try TestServer.requireConfiguration())
        #expect(throws: OutboxError.self) {
            _ = try MySQLOutboxStore(pool: pool,
                                     configuration: .init(messageLimits: OutboxMessageLimits(maximumKeyBytes: 4096)), logger: .init(label: "test"))
        }
    }

    /// The claim's held-back probes read only the messages listed as waiting for a retry
    /// (`<prefix>_waiting`, schema version 7), each checked against its message by primary key,
    /// never the pending rows of a key: on a million-row backlog the version 1 index made each
    /// claim read ~500,000 rows. The messages table keeps no index for retries any more.
    @Test func claimProbeReadsOnlyWaitingRows() async throws {
        let subject = try await MySQLStoreUnderTest(partitionCount: 4)
        atEnd { try? await subject.close() }
        let grant = try await subject.mysql.heartbeat(OutboxHeartbeat(relayID: "relay", leaseDuration: .seconds(30)))
        for start in stride(from: 0, to: 4_000, by: 1_000) {
            try await subject.enqueueCommitted((start..<start + 1_000).map { OutboxMessage(topic: "t", key: "k\($0 % 10)", text: "\($0)") })
        }
        let first = try await subject.mysql.claim(partitions: Array(grant.owned).sorted(), limit: 3, now: Date())
        _ = try await subject.mysql.acknowledge(OutboxAcknowledgement(relayID: "relay", retries: first.map {
            .init(sequence: $0.sequence, partition: $0.partition, availableAt: Date().addingTimeInterval(60), error: "later")
        }))
        let names = subject.mysql.names
        let listed = try await subject.application.query("SELECT sequence FROM \(names.waiting) ORDER BY sequence").rows.compactMap { $0[0].int64 }
        #expect(listed == first.map(\.sequence), "each retry is listed as waiting")
        _ = try await subject.application.query("ANALYZE TABLE \(names.messages), \(names.waiting)")
        let sql = MySQLOutboxStore.claimSQL(names, partitions: 4, skipped: 2)
        let values = MySQLOutboxStore.claimValues(floor: 0, now: Date(), partitions: (0..<4).map { .int($0) }, skipped: [.integer(1), .integer(2)],
                                                  limit: 500, maximumBytes: 64 << 20)
        let plan = try await subject.application.query("EXPLAIN " + sql, values)
        let tableColumn = try #require(plan.columns.firstIndex(of: "table"))
        let keyColumn = try #require(plan.columns.firstIndex(of: "key"))
        let keys = Dictionary(plan.rows.map { ($0[tableColumn].string ?? "", $0[keyColumn].string ?? "") }, uniquingKeysWith: { $1 })
        #expect(keys["m"] == "PRIMARY", "the claim walks the primary key of the messages table, which holds only pending rows: \(keys)")
        #expect(keys["e"] == "outbox_waiting_key", "the held-back probe reads the key's waiting rows: \(keys)")
        #expect(["outbox_waiting_floor", "outbox_waiting_key"].contains(keys["r"] ?? ""),
                "the probe for any waiting row reads the partitions' waiting rows: \(keys)")
        #expect(keys["em"] == "PRIMARY" && keys["rm"] == "PRIMARY", "each waiting row's message is read by primary key: \(keys)")
        let indexes = try await subject.application.query(
            "SELECT index_name FROM information_schema.statistics WHERE table_schema = DATABASE() AND table_name = ?",
            [.text(names.messagesTableName)]).rows.compactMap { $0[0].string }
        #expect(!indexes.contains("outbox_held") && !indexes.contains("outbox_retrying"),
                "migrations 2 and 7 drop the probe indexes of the messages table: \(indexes)")
        // Delivered at last, a message is no longer listed.
        _ = try await subject.mysql.acknowledge(OutboxAcknowledgement(relayID: "relay", delivered: [.init(sequence: first[0].sequence, partition: first[0].partition)]))
        let left = try await subject.application.query("SELECT sequence FROM \(names.waiting) ORDER BY sequence").rows.compactMap { $0[0].int64 }
        #expect(left == first.dropFirst().map(\.sequence))
    }

    /// Migrating a version 6 outbox to version 7 lists the messages an older relay scheduled for
    /// a retry, so they still hold back their keys; and it refuses while a relay is registered,
    /// since a relay of an older build would record its retries the old way.
    @Test func versionSevenCarriesWaitingMessagesOverAndWaitsForRelaysToStop() async throws {
        let subject = try await MySQLStoreUnderTest(partitionCount: 1)
        atEnd { try? await subject.close() }
        let names = subject.mysql.names
        let messages = (0..<3).map { OutboxMessage(topic: "t", key: "k", text: "\($0)") }
        try await subject.enqueueCommitted(messages)
        // The outbox as version 6 left it, with the first message scheduled for a retry by a relay
        // of that build (attempts up, due in a minute, not listed).
        for statement in [
            "DROP TABLE \(names.waiting)",
            "ALTER TABLE \(names.messages) ADD COLUMN retrying TINYINT GENERATED ALWAYS AS (attempts > 0) VIRTUAL",
            "ALTER TABLE \(names.messages) ADD INDEX outbox_retrying (state, retrying, partition_no, message_key, sequence)",
            "DELETE FROM \(names.migrations) WHERE version >= 7",
        ] { _ = try await subject.application.query(statement) }
        _ = try await subject.application.query("UPDATE \(names.messages) SET attempts = 1, available_at = ? ORDER BY sequence LIMIT 1",
                                                [.integer(MySQLTime.microseconds(Date().addingTimeInterval(60)))])
        _ = try await subject.mysql.heartbeat(OutboxHeartbeat(relayID: "older-relay", leaseDuration: .seconds(30)))
        let refused = await #expect(throws: OutboxError.self) { try await subject.mysql.migrate() }
        #expect(refused?.message.contains("Relays are registered on this outbox (older-relay)") == true, "\(String(describing: refused))")
        try await subject.mysql.resign(relayID: "older-relay")
        try await subject.mysql.migrate()
        let listed = try await subject.application.query("SELECT COUNT(*) FROM \(names.waiting)").rows.first?[0].int64
        #expect(listed == 1, "the message waiting for its retry is listed")
        _ = try await subject.mysql.heartbeat(OutboxHeartbeat(relayID: "relay", leaseDuration: .seconds(30)))
        let claimed = try await subject.mysql.claim(partitions: [0], limit: 10, now: Date())
        #expect(claimed.isEmpty, "the key waits behind its first message: \(claimed.map(\.message.id))")
    }

    /// A listing in `<prefix>_waiting` whose message is gone (a `TRUNCATE` of the messages table
    /// leaves it) holds nothing back: the probes count a listing only while its message waits.
    @Test func aWaitingListingWithoutItsMessageHoldsNothingBack() async throws {
        let subject = try await MySQLStoreUnderTest(partitionCount: 1)
        atEnd { try? await subject.close() }
        _ = try await subject.application.query("INSERT INTO \(subject.mysql.names.waiting) (sequence, partition_no, message_key) VALUES (0, 0, 'k')")
        let messages = (0..<3).map { OutboxMessage(topic: "t", key: "k", text: "\($0)") }
        try await subject.enqueueCommitted(messages)
        _ = try await subject.mysql.heartbeat(OutboxHeartbeat(relayID: "relay", leaseDuration: .seconds(30)))
        let claimed = try await subject.mysql.claim(partitions: [0], limit: 10, now: Date())
        #expect(claimed.map(\.message.id) == messages.map(\.id))
    }

    /// The library's own errors (a closed pool here; a migration lock held elsewhere, a
    /// placeholder count) reach the user as their sentence. They used to read "MySQL failed during
    /// status (error 0, SQLSTATE HY000).", the sentence only in the underlying error.
    @Test func theLibrarysOwnErrorsKeepTheirSentence() async throws {
        let subject = try await MySQLStoreUnderTest(partitionCount: 1)
        try await subject.close()  // drops its tables, then closes the pool
        let error = await #expect(throws: OutboxError.self) { _ = try await subject.mysql.status(now: Date()) }
        #expect(error?.message == "The connection pool is closed.", "\(String(describing: error))")
        #expect(error?.isRetriable == false)
    }

    /// A claim starts its walk at its partitions' claim floor: once drained messages are behind a
    /// later claim, no claim steps over their index entries again (InnoDB keeps them, delete-marked,
    /// until its purge gets to them). Before the floor, every claim walked from the index's start.
    @Test func claimsStartPastDrainedMessages() async throws {
        let subject = try await MySQLStoreUnderTest(partitionCount: 4)
        atEnd { try? await subject.close() }
        let grant = try await subject.mysql.heartbeat(OutboxHeartbeat(relayID: "relay", leaseDuration: .seconds(30)))
        let partitions = Array(grant.owned).sorted()
        try await subject.enqueueCommitted((0..<1_000).map { OutboxMessage(topic: "t", key: "k\($0 % 50)", text: "\($0)") })
        let drained = try await subject.mysql.claim(partitions: partitions, limit: 1_000, now: Date())
        #expect(drained.count == 1_000)
        _ = try await subject.mysql.acknowledge(OutboxAcknowledgement(
            relayID: "relay", delivered: drained.map { .init(sequence: $0.sequence, partition: $0.partition) }))
        let next = OutboxMessage(topic: "t", key: "next", text: "next")
        try await subject.enqueueCommitted([next])
        let claimed = try await subject.mysql.claim(partitions: partitions, limit: 10, now: Date())
        #expect(claimed.map(\.message.id) == [next.id])
        let floors = try await subject.application.query("SELECT claim_floor FROM \(subject.mysql.names.commitGuard)").rows.compactMap { $0[0].int64 }
        #expect(floors.count == 4 && floors.allSatisfy { $0 == claimed[0].sequence },
                "every partition's floor is past the drained messages: \(floors), drained up to \(drained.last?.sequence ?? 0)")
    }

    /// A `TRUNCATE` of the messages table starts sequences again at 1, below every claim floor: a
    /// claim that finds nothing looks below its floor, and the claim after it (an idle relay's
    /// one-statement check first) walks the pending index from its start, so the new messages
    /// are still claimed.
    @Test func messagesAfterATruncateAreClaimed() async throws {
        let subject = try await MySQLStoreUnderTest(partitionCount: 4)
        atEnd { try? await subject.close() }
        _ = try await subject.mysql.heartbeat(OutboxHeartbeat(relayID: "relay", leaseDuration: .seconds(30)))
        try await subject.enqueueCommitted((0..<20).map { OutboxMessage(topic: "t", key: "k\($0)", text: "\($0)") })
        let drained = try await subject.mysql.claim(partitions: Array(0..<4), limit: 100, now: Date())
        _ = try await subject.mysql.acknowledge(OutboxAcknowledgement(
            relayID: "relay", delivered: drained.map { .init(sequence: $0.sequence, partition: $0.partition) }))
        try await subject.enqueueCommitted((0..<20).map { OutboxMessage(topic: "t", key: "k\($0)", text: "\($0)") })
        #expect(try await subject.mysql.claim(partitions: Array(0..<4), limit: 100, now: Date()).count == 20)
        let floors = try await subject.application.query("SELECT MIN(claim_floor) FROM \(subject.mysql.names.commitGuard)").rows
        #expect(floors.first?[0].int64 == 21, "the floors are past the first 20 messages")
        try await subject.application.query("TRUNCATE TABLE \(subject.mysql.names.messages)")
        let fresh = OutboxMessage(topic: "t", key: "fresh", text: "after the truncate")
        try await subject.enqueueCommitted([fresh])
        var claimed: [OutboxRecord] = []
        for _ in 0..<2 where claimed.isEmpty {
            claimed = try await subject.mysql.claim(partitions: Array(0..<4), limit: 100, now: Date())
        }
        #expect(claimed.map(\.message.id) == [fresh.id], "the message written after the truncate is claimed by the second claim at the latest")
    }

    /// Store operations on a database where `migrate` never ran say so in one sentence.
    @Test func missingSchemaIsNamed() async throws {
        let pool = MySQLConnectionPool(configuration: try TestServer.requireConfiguration())
        let store = try MySQLOutboxStore(pool: pool, configuration: .init(tablePrefix: "never_migrated"), logger: .init(label: "test"))
        atEnd { await pool.close() }
        do {
            _ = try await store.claim(partitions: [0], limit: 1, now: Date())
            Issue.record("claim on a missing schema succeeded")
        } catch let error as OutboxError {
            #expect(error.code == .schemaMismatch)
            #expect(error.description.contains("outbox migrate"))
        }
    }

    /// A schema older than the build (here, without version 6's procedure) is named at status,
    /// which a relay command checks before it starts: before, the relay started and logged a failed
    /// heartbeat every 2.5 s.
    @Test func aSchemaOlderThanTheBuildIsNamed() async throws {
        let subject = try await MySQLStoreUnderTest(partitionCount: 4)
        atEnd { try? await subject.close() }
        try await subject.application.query("DELETE FROM \(subject.mysql.names.migrations) WHERE version >= 6")
        try await subject.application.query("DROP PROCEDURE \(subject.mysql.names.table("renew"))")
        let refused = await #expect(throws: OutboxError.self) { try await subject.mysql.status(now: Date()) }
        #expect(refused?.code == .schemaMismatch)
        #expect(refused?.message.contains("version 5") == true && refused?.message.contains("outbox migrate") == true, "\(String(describing: refused))")
        try await subject.mysql.migrate()
        _ = try await subject.mysql.status(now: Date())
        _ = try await subject.mysql.heartbeat(OutboxHeartbeat(relayID: "relay", leaseDuration: .seconds(30)))
    }

    /// Outside a transaction each statement would commit alone (a batch could be half written):
    /// an enqueue there is refused with one sentence, and nothing is written.
    @Test func enqueueOutsideATransactionIsRefused() async throws {
        let subject = try await MySQLStoreUnderTest(partitionCount: 4)
        atEnd { try? await subject.close() }
        let messages = (0..<600).map { OutboxMessage(topic: "t", key: "k\($0 % 7)", text: "\($0)") }
        let error = await #expect(throws: OutboxError.self) {
            try await subject.application.withConnection { connection in try await subject.mysql.enqueue(messages, in: connection) }
        }
        #expect(error?.description.contains("must run inside a transaction") == true, "\(String(describing: error))")
        let status = try await subject.store.status(now: Date())
        #expect(status.pending == 0, "nothing was committed")
    }

    /// No claim exceeds MySQL's 65,535 placeholders, whatever the relay has in flight.
    @Test func claimWithAHugeInFlightListStaysUnderThePlaceholderLimit() async throws {
        let subject = try await MySQLStoreUnderTest(partitionCount: 4)
        atEnd { try? await subject.close() }
        let messages = (0..<5).map { OutboxMessage(topic: "t", key: "k\($0)", text: "\($0)") }
        try await subject.enqueueCommitted(messages)
        let all = try await subject.mysql.claim(partitions: Array(0..<4), limit: 10, now: Date())
        #expect(all.count == 5)
        let inFlight = all.prefix(2).map(\.sequence) + (1...70_000).map { Int64(1_000_000_000 + $0) }
        let rest = try await subject.mysql.claim(partitions: Array(0..<4), limit: 10, now: Date(), excluding: inFlight)
        #expect(rest.map(\.message.id) == all.dropFirst(2).map(\.message.id))
    }

    /// The longest prefix `migrate` accepts (40 characters) works end to end: tables, the
    /// migration lock name, enqueue, claim and acknowledgement.
    @Test func theLongestAcceptedPrefixWorksEndToEnd() async throws {
        let prefix = "p" + String(UUID().uuidString.lowercased().filter(\.isLetter).prefix(6)) + String(repeating: "x", count: 40)
        let subject = try await MySQLStoreUnderTest(partitionCount: 4, prefix: String(prefix.prefix(40)))
        atEnd { try? await subject.close() }
        let recorder = RecordingPublisher()
        let relay = RunningRelay(OutboxRelay(store: subject.store, publisher: recorder, configuration: .forTesting(), logger: subject.logger))
        let messages = (0..<20).map { OutboxMessage(topic: "t", key: "k\($0 % 3)", text: "\($0)") }
        try await subject.enqueueCommitted(messages)
        try await waitUntil("the messages are published") { recorder.deliveryCount >= messages.count }
        try await relay.stop()
        #expect(Set(recorder.deliveries.map(\.message.id)) == Set(messages.map(\.id)))
    }
}
