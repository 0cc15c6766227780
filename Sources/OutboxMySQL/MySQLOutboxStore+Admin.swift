public import Foundation
public import Outbox

extension MySQLOutboxStore {
    public func removeDelivered(finishedBefore cutoff: Date, limit: Int) async throws -> Int {
        try await perform("remove delivered") {
            try await pool.query(
                "DELETE FROM \(names.finished) WHERE state = 2 AND finished_at < ? ORDER BY state, finished_at LIMIT ?",
                [.integer(MySQLTime.microseconds(cutoff)), .int(limit)]).affectedRows
        }
    }

    public func status(now: Date) async throws -> OutboxStatus {
        try await perform("status") {
            try await pool.withConnection { connection in
                try await MySQLSchema.requireCurrent(names: names, on: connection)
                // Pending messages in the messages table, finished ones in their own (schema version 8).
                let counts = try await connection.query("""
                    SELECT COALESCE(SUM(state = 0), 0), COALESCE(SUM(state = 0 AND attempts > 0), 0),
                           (SELECT COUNT(*) FROM \(names.finished) WHERE state = 1), (SELECT COUNT(*) FROM \(names.finished) WHERE state = 2),
                           MIN(CASE WHEN state = 0 THEN created_at END)
                    FROM \(names.messages)
                    """).rows.first ?? MySQLRow(values: [0, 0, 0, 0, nil])
                var parts = OutboxStatusParts()
                (parts.pending, parts.retrying, parts.dead, parts.delivered) =
                    (Int(counts[0].int64 ?? 0), Int(counts[1].int64 ?? 0), Int(counts[2].int64 ?? 0), Int(counts[3].int64 ?? 0))
                parts.oldestPending = counts[4].int64.map(MySQLTime.date)
                parts.owners = try await connection.query("SELECT partition_no, owner, expires_at FROM \(names.leases)").rows.map {
                    (Int($0[0].int64 ?? 0), $0[1].string, MySQLTime.date($0[2].int64 ?? 0))
                }
                parts.relays = try await connection.query(
                    "SELECT relay_id, expires_at, in_flight, published FROM \(names.relays) WHERE expires_at > ?",
                    [.integer(MySQLTime.microseconds(now))]).rows.map {
                        ($0[0].string ?? "", MySQLTime.date($0[1].int64 ?? 0), Int($0[2].int64 ?? 0), Int($0[3].int64 ?? 0))
                    }
                return parts.status(now: now)
            }
        }
    }

    public func backlog(now: Date, countLimit: Int) async throws -> OutboxBacklog {
        try await perform("backlog") {
            // Each part walks an index: at most `countLimit` entries, or one probe. The messages
            // table holds only pending messages, dead letters are in their own (schema version 8).
            let row = try await pool.query("""
                SELECT (SELECT COUNT(*) FROM (SELECT 1 FROM \(names.messages) WHERE state = 0 LIMIT ?) p),
                       (SELECT COUNT(*) FROM (SELECT 1 FROM \(names.finished) WHERE state = 1 LIMIT ?) d),
                       (SELECT created_at FROM \(names.messages) WHERE state = 0 ORDER BY sequence LIMIT 1)
                """, [.int(countLimit), .int(countLimit)]).rows.first
            return OutboxBacklog(pending: Int(row?[0].int64 ?? 0), dead: Int(row?[1].int64 ?? 0), countLimit: countLimit,
                                 oldestPendingAge: OutboxBacklog.age(of: row?[2].int64.map(MySQLTime.date), now: now))
        }
    }

    public func deadLetters(limit: Int, afterSequence: Int64?) async throws -> [OutboxDeadLetter] {
        try await perform("list dead letters") {
            try await pool.query("""
                SELECT sequence, id, topic, message_key, message_type, payload, headers, partition_no, created_at, attempts, last_error,
                       COALESCE(finished_at, created_at)
                FROM \(names.finished) WHERE state = 1 AND sequence > ?
                ORDER BY sequence LIMIT ?
                """, [.integer(afterSequence ?? 0), .int(limit)]).rows.map { row in
                    OutboxDeadLetter(record: try Self.record(row), failedAt: MySQLTime.date(row[11].int64 ?? 0))
                }
        }
    }

    public func retryDeadLetters(sequences: [Int64], now: Date) async throws -> Int {
        let count = try await perform("retry dead letters") {
            // Back into the messages table with their old sequences, which may be below their
            // partitions' claim floors: the same transaction lowers those (see `MySQLClaimFloor`).
            try await updateDeadLetters(sequences) { count in
                let selection = "sequence IN \(MySQLValueList.placeholders(count))"
                return [(MySQLFinishedMessages.restoreSQL(names, selection: selection), [.integer(OutboxStoreSupport.dueAtOnceMicroseconds)]),
                        (MySQLFinishedMessages.deleteDeadSQL(names, selection: selection), []),
                        (MySQLClaimFloor.lowerSQL(names, sequences: count), [])]
            }
        }
        if count > 0 {
            wakeUp.noteActivity()
            wakeUp.committed()
        }
        return count
    }

    public func discardDeadLetters(sequences: [Int64]) async throws -> Int {
        try await perform("discard dead letters") {
            try await updateDeadLetters(sequences) { count in
                [(MySQLFinishedMessages.deleteDeadSQL(names, selection: "sequence IN \(MySQLValueList.placeholders(count))"), [])]
            }
        }
    }

    /// Runs the statements `statements` gives for each slice of `sequences`, in one transaction.
    /// Given the slice's length, it returns each statement's SQL (with one `IN (…)` list of that
    /// length) and the values that come before the list; the first statement's counts are the result.
    private func updateDeadLetters(_ sequences: [Int64], statements: (Int) -> [(String, [MySQLValue])]) async throws -> Int {
        guard !sequences.isEmpty else { return 0 }
        let values = sequences.map { MySQLValue.integer($0) }
        let slices = MySQLValueList.slices(values).map { slice in
            statements(slice.count).map { sql, leading in (sql, leading + MySQLValueList.padded(slice)) }
        }
        return try await transaction { connection in
            var count = 0
            for slice in slices {
                for (index, (sql, values)) in slice.enumerated() {
                    let affected = try await connection.query(sql, values).affectedRows
                    if index == 0 { count += affected }
                }
            }
            return count
        }
    }
}
