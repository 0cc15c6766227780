import Foundation
import Outbox
@testable import OutboxMySQL
import OutboxTestSupport
import OutboxTesting
import Testing

/// Schema version 8: the messages table holds only pending messages; dead letters and retained
/// deliveries live in `<prefix>_finished` with their sequences.
@Suite("MySQL/MariaDB finished messages", .enabled(if: TestServer.mariadb.shouldRun, "set OUTBOX_MYSQL_URL (scripts/test.sh does)"), .closesAtEnd)
struct MySQLFinishedTableTests {
    /// A retained delivery and a dead letter leave the messages table, which keeps no index over
    /// `state`; the dead letter sent back returns with its sequence and is claimed again.
    @Test func finishedMessagesLeaveTheMessagesTable() async throws {
        let subject = try await MySQLStoreUnderTest(partitionCount: 1)
        atEnd { try? await subject.close() }
        let names = subject.mysql.names
        _ = try await subject.mysql.heartbeat(OutboxHeartbeat(relayID: "relay", leaseDuration: .seconds(30)))
        let messages = (0..<3).map { OutboxMessage(topic: "t", key: "k\($0)", text: "message \($0) ' ; --") }
        try await subject.enqueueCommitted(messages)
        let claimed = try await subject.mysql.claim(partitions: [0], limit: 10, now: Date())
        try #require(claimed.count == 3)
        let result = try await subject.mysql.acknowledge(OutboxAcknowledgement(
            relayID: "relay", delivered: [.init(sequence: claimed[0].sequence, partition: 0)],
            deadLetters: [.init(sequence: claimed[1].sequence, partition: 0, error: "rejected ' ; --")], retainDelivered: true))
        #expect(result.applied == 2 && result.fenced == 0)

        let pending = try await subject.application.query("SELECT sequence FROM \(names.messages) ORDER BY sequence").rows.compactMap { $0[0].int64 }
        #expect(pending == [claimed[2].sequence], "only the pending message is left in the messages table")
        let finished = try await subject.application.query("SELECT sequence, state, attempts FROM \(names.finished) ORDER BY sequence").rows
        #expect(finished.map { [$0[0].int64, $0[1].int64, $0[2].int64] } == [[claimed[0].sequence, 2, 0], [claimed[1].sequence, 1, 1]])
        let status = try await subject.mysql.status(now: Date())
        #expect(status.pending == 1 && status.dead == 1 && status.deliveredRetained == 1, "\(status)")

        let dead = try await subject.mysql.deadLetters(limit: 10, afterSequence: nil)
        #expect(dead.map(\.record.message.id) == [messages[1].id])
        #expect(dead.first?.record.lastError == "rejected ' ; --")
        #expect(try await subject.mysql.retryDeadLetters(sequences: [claimed[1].sequence], now: Date()) == 1)
        #expect(try await subject.mysql.deadLetters(limit: 10, afterSequence: nil).isEmpty)
        let again = try await subject.mysql.claim(partitions: [0], limit: 10, now: Date())
        #expect(again.map(\.sequence) == [claimed[1].sequence, claimed[2].sequence], "sent back with its old sequence, below the claim floor")
        #expect(again.first?.message.payload == messages[1].payload)

        #expect(try await subject.mysql.removeDelivered(finishedBefore: Date().addingTimeInterval(60), limit: 10) == 1)
        let left = try await subject.application.query("SELECT COUNT(*) FROM \(names.finished)").rows.first?[0].int64
        #expect(left == 0)
        let indexes = try await subject.application.query(
            "SELECT DISTINCT index_name FROM information_schema.statistics WHERE table_schema = DATABASE() AND table_name = ? ORDER BY index_name",
            [.text(names.messagesTableName)]).rows.compactMap { $0[0].string }
        #expect(indexes == ["outbox_id", "PRIMARY"], "the messages table keeps its primary key and the id: \(indexes)")
    }

    /// Only pending messages hold their ids in the messages table, so an id can be enqueued again
    /// while its dead letter waits. Sending that dead letter back then says so in one sentence
    /// and changes nothing: the dead letter stays, the newer message stays pending.
    @Test func aDeadLetterWhoseIDWasEnqueuedAgainIsNotSentBack() async throws {
        let subject = try await MySQLStoreUnderTest(partitionCount: 1)
        atEnd { try? await subject.close() }
        let (deadSequence, again) = try await subject.deadLetterWhoseIDIsPendingAgain()

        do {
            _ = try await subject.mysql.retryDeadLetters(sequences: [deadSequence], now: Date())
            Issue.record("sending the dead letter back should fail")
        } catch let error as OutboxError {
            #expect(error.code == .invalidMessage, "\(error)")
            #expect(error.message.contains("enqueued again"), "\(error.message)")
        }
        let dead = try await subject.mysql.deadLetters(limit: 10, afterSequence: nil)
        #expect(dead.map(\.record.sequence) == [deadSequence], "the dead letter stays")
        let pending = try await subject.mysql.claim(partitions: [0], limit: 10, now: Date())
        #expect(pending.map(\.message.payload) == [again.payload], "the newer message stays pending, alone")
    }

    /// A `TRUNCATE` of the messages table starts sequences again at 1. A message finished after it
    /// must not collide with a finished row of the same sequence from before: that
    /// acknowledgement would fail at every attempt and stall the partition.
    @Test func sequencesReusedAfterATruncateStillFinish() async throws {
        let subject = try await MySQLStoreUnderTest(partitionCount: 1)
        atEnd { try? await subject.close() }
        let names = subject.mysql.names
        _ = try await subject.mysql.heartbeat(OutboxHeartbeat(relayID: "relay", leaseDuration: .seconds(30)))
        for round in 0..<2 {
            try await subject.enqueueCommitted([OutboxMessage(topic: "t", key: "k", text: "round \(round)")])
            let claimed = try await subject.mysql.claim(partitions: [0], limit: 10, now: Date())
            try #require(claimed.count == 1)
            #expect(claimed[0].sequence == 1)
            let result = try await subject.mysql.acknowledge(OutboxAcknowledgement(
                relayID: "relay", deadLetters: [.init(sequence: claimed[0].sequence, partition: 0, error: "no")]))
            #expect(result.applied == 1)
            _ = try await subject.application.query("TRUNCATE TABLE \(names.messages)")
        }
        let dead = try await subject.mysql.deadLetters(limit: 10, afterSequence: nil)
        #expect(dead.count == 2, "both dead letters are kept")
    }

    /// Migrating a version 7 outbox moves its dead letters and retained deliveries out of the
    /// messages table and drops the indexes over `state`; it refuses while a relay is registered,
    /// since a relay of an older build would leave finished messages in the messages table.
    @Test func versionEightMovesFinishedMessagesAndWaitsForRelaysToStop() async throws {
        let subject = try await MySQLStoreUnderTest(partitionCount: 1)
        atEnd { try? await subject.close() }
        let names = subject.mysql.names
        let messages = (0..<3).map { OutboxMessage(topic: "t", key: "k\($0)", text: "\($0)") }
        try await subject.enqueueCommitted(messages)
        // The outbox as version 7 left it: a dead letter and a retained delivery in the messages table.
        for statement in [
            "DROP TABLE \(names.finished)",
            "ALTER TABLE \(names.messages) ADD INDEX outbox_claim (state, sequence), ADD INDEX outbox_finished (state, finished_at)",
            "DELETE FROM \(names.migrations) WHERE version = 8",
            "UPDATE \(names.messages) SET state = 1, attempts = 3, last_error = 'gone', finished_at = 5 ORDER BY sequence LIMIT 1",
            "UPDATE \(names.messages) SET state = 2, finished_at = 7 WHERE state = 0 ORDER BY sequence LIMIT 1",
        ] { _ = try await subject.application.query(statement) }
        _ = try await subject.mysql.heartbeat(OutboxHeartbeat(relayID: "older-relay", leaseDuration: .seconds(30)))
        let refused = await #expect(throws: OutboxError.self) { try await subject.mysql.migrate() }
        #expect(refused?.message.contains("Relays are registered on this outbox (older-relay)") == true, "\(String(describing: refused))")
        #expect(refused?.message.contains("schema version 8") == true, "\(String(describing: refused))")
        try await subject.mysql.resign(relayID: "older-relay")
        try await subject.mysql.migrate()

        let status = try await subject.mysql.status(now: Date())
        #expect(status.pending == 1 && status.dead == 1 && status.deliveredRetained == 1, "\(status)")
        let dead = try await subject.mysql.deadLetters(limit: 10, afterSequence: nil)
        #expect(dead.map(\.record.message.id) == [messages[0].id])
        #expect(dead.first?.record.attempts == 3 && dead.first?.record.lastError == "gone")
        let indexes = try await subject.application.query(
            "SELECT DISTINCT index_name FROM information_schema.statistics WHERE table_schema = DATABASE() AND table_name = ?",
            [.text(names.messagesTableName)]).rows.compactMap { $0[0].string }
        #expect(!indexes.contains("outbox_claim") && !indexes.contains("outbox_finished"), "\(indexes)")
        _ = try await subject.mysql.heartbeat(OutboxHeartbeat(relayID: "relay", leaseDuration: .seconds(30)))
        let claimed = try await subject.mysql.claim(partitions: [0], limit: 10, now: Date())
        #expect(claimed.map(\.message.id) == [messages[2].id])
    }
}

extension MySQLStoreUnderTest {
    /// One message dead-lettered, then a newer message enqueued with its id (accepted: the
    /// messages table holds pending ids only). Returns the dead letter's sequence and the newer message.
    func deadLetterWhoseIDIsPendingAgain() async throws -> (deadSequence: Int64, again: OutboxMessage) {
        _ = try await mysql.heartbeat(OutboxHeartbeat(relayID: "relay", leaseDuration: .seconds(30)))
        let original = OutboxMessage(topic: "t", key: "k", text: "original")
        try await enqueueCommitted([original])
        let claimed = try await mysql.claim(partitions: [0], limit: 10, now: Date())
        try #require(claimed.count == 1)
        _ = try await mysql.acknowledge(OutboxAcknowledgement(
            relayID: "relay", deadLetters: [.init(sequence: claimed[0].sequence, partition: 0, error: "rejected")]))
        var again = OutboxMessage(topic: "t", key: "k", text: "enqueued again")
        again.id = original.id
        try await enqueueCommitted([again])
        return (claimed[0].sequence, again)
    }
}
