public import Foundation
public import Outbox

extension MySQLOutboxStore {
    public func removeDelivered(finishedBefore cutoff: Date, limit: Int) async throws -> Int {
        try await perform("remove delivered") {
            try await pool.query(
                "DELETE FROM \(names.messages) WHERE state = 2 AND finished_at < ? ORDER BY state, finished_at LIMIT ?",
                [.integer(MySQLTime.microseconds(cutoff)), .int(limit)]).affectedRows
        }
    }

    public func status(now: Date) async throws -> OutboxStatus {
        try await perform("status") {
            try await pool.withConnection { connection in
                try await MySQLSchema.requireCurrent(names: names, on: connection)
                let counts = try await connection.query("""
                    SELECT COALESCE(SUM(state = 0), 0), COALESCE(SUM(state = 0 AND attempts > 0), 0), COALESCE(SUM(state = 1), 0),
                           COALESCE(SUM(state = 2), 0), MIN(CASE WHEN state = 0 THEN created_at END)
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
            // Each part walks the (state, sequence) index: at most `countLimit` entries, or one probe.
            let row = try await pool.query("""
                SELECT (SELECT COUNT(*) FROM (SELECT 1 FROM \(names.messages) WHERE state = 0 LIMIT ?) p),
                       (SELECT COUNT(*) FROM (SELECT 1 FROM \(names.messages) WHERE state = 1 LIMIT ?) d),
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
                FROM \(names.messages) WHERE state = 1 AND sequence > ?
                ORDER BY sequence LIMIT ?
                """, [.integer(afterSequence ?? 0), .int(limit)]).rows.map { row in
                    OutboxDeadLetter(record: try Self.record(row), failedAt: MySQLTime.date(row[11].int64 ?? 0))
                }
        }
    }

    public func retryDeadLetters(sequences: [Int64], now: Date) async throws -> Int {
        let count = try await perform("retry dead letters") {
            // Back to pending with their old sequences, which may be below their partitions'
            // claim floors: the same transaction lowers those (see `MySQLClaimFloor`).
            try await updateDeadLetters(sequences) { list in
                ("UPDATE \(names.messages) SET state = 0, attempts = 0, available_at = ?, finished_at = NULL WHERE sequence IN \(list) AND state = 1",
                 [.integer(OutboxStoreSupport.dueAtOnceMicroseconds)])
            } after: { list in
                (MySQLClaimFloor.lowerSQL(self.names, sequences: list), [])
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
            try await updateDeadLetters(sequences) { list in
                ("DELETE FROM \(names.messages) WHERE sequence IN \(list) AND state = 1", [])
            }
        }
    }

    /// Runs one statement per slice of `sequences` in one transaction; `statement` gets the
    /// `IN (…)` list and returns the SQL and the values that come before the list. `after`, given
    /// the slice's length, is a second statement run on the same slice (its count not added).
    private func updateDeadLetters(_ sequences: [Int64], statement: (String) -> (String, [MySQLValue]),
                                   after: ((Int) -> (String, [MySQLValue]))? = nil) async throws -> Int {
        guard !sequences.isEmpty else { return 0 }
        let values = sequences.map { MySQLValue.integer($0) }
        let statements = MySQLValueList.slices(values).map { slice in
            let (sql, leading) = statement(MySQLValueList.placeholders(slice.count))
            let (afterSQL, afterLeading) = after?(slice.count) ?? ("", [])
            return (sql, leading + MySQLValueList.padded(slice), afterSQL, afterLeading + MySQLValueList.padded(slice))
        }
        return try await transaction { connection in
            var count = 0
            for (sql, values, afterSQL, afterValues) in statements {
                count += try await connection.query(sql, values).affectedRows
                if !afterSQL.isEmpty { try await connection.query(afterSQL, afterValues) }
            }
            return count
        }
    }
}
