/// Each partition's claim floor: a sequence below which the partition has no pending row, kept in
/// its commit-guard row (`claim_floor`, schema version 5).
///
/// Why: a claim walks the messages table's primary key in sequence order (until schema version 8
/// the `(state, sequence)` index). InnoDB removes the entries of deleted rows only when its purge
/// gets to them, so without a floor every claim of a long drain first stepped over the
/// delete-marked entries of everything acknowledged but not yet purged (tens of thousands during a
/// million-message drain). With the floor, the walk starts at the lowest floor of the claim's
/// partitions.
///
/// Why it is safe: the floor is raised only by a claim, which holds its partitions' guard rows
/// exclusively (no enqueue is open there, and no sequence drawn later can be lower than one drawn
/// before). At that moment every pending row of those partitions at or above the old floor and
/// up to the last row claimed was claimed, is in flight (the relay's list), waits for a retry, or
/// is held back behind one of the same key. The new floor is the lowest of: the rows claimed, the
/// rows in flight (all partitions: lower is always safe), and each partition's lowest row waiting
/// for a retry. A dead letter sent back to pending keeps its old sequence, so
/// `retryDeadLetters` lowers its partition's floor in the same transaction.
enum MySQLClaimFloor {
    /// Where a claim over partitions with these floors starts its walk.
    static func start(_ floors: [Int64]) -> Int64 {
        floors.min() ?? 0
    }

    /// The floor for every partition of the claim, before each partition's rows waiting for a
    /// retry are counted: nil when the claim found nothing (no row tells where pending rows are).
    static func raised(claimed: [Int64], inFlight: [Int64]) -> Int64? {
        guard let lowestClaimed = claimed.min() else { return nil }
        return min(lowestClaimed, inFlight.min() ?? .max)
    }

    /// Sets the claim's partitions' floors (placeholders: the raised floor twice, the
    /// partitions). A partition's lowest row waiting for a retry keeps its floor down, and with it
    /// the rows of that key held back behind it. That probe reads only the partition's rows listed
    /// in `<prefix>_waiting`, each checked against its message.
    static func raiseSQL(_ names: MySQLOutboxNames, partitions: Int) -> String {
        """
            UPDATE \(names.commitGuard) AS g
            SET g.claim_floor = LEAST(?, COALESCE(
                (SELECT MIN(e.sequence) FROM \(names.waiting) AS e JOIN \(names.messages) AS em ON em.sequence = e.sequence
                 WHERE e.partition_no = g.partition_no AND em.state = 0 AND em.attempts > 0), ?))
            WHERE g.partition_no IN \(MySQLValueList.placeholders(partitions))
            """
    }

    /// Lowers the floors of the partitions holding `sequences` (dead letters just sent back to
    /// pending) to their lowest such sequence (placeholders: the sequences).
    static func lowerSQL(_ names: MySQLOutboxNames, sequences: Int) -> String {
        """
            UPDATE \(names.commitGuard) AS g
            JOIN (SELECT partition_no, MIN(sequence) AS lowest FROM \(names.messages)
                  WHERE sequence IN \(MySQLValueList.placeholders(sequences)) AND state = 0 GROUP BY partition_no) AS r
              ON r.partition_no = g.partition_no
            SET g.claim_floor = LEAST(g.claim_floor, r.lowest)
            """
    }

    /// A claim that found nothing looks below its floor for pending rows of its partitions, and
    /// lowers their floors to the first one it finds; the next claim takes it. None should be
    /// there; this is the net for what the floor cannot see, such as a `TRUNCATE` of the messages
    /// table, which starts sequences again at 1. Made only by claims that found nothing, so a
    /// drain never pays for it; an idle table has few entries below the floor.
    static func lowerBelowStrayRows(_ floor: Int64, partitions: [MySQLValue], names: MySQLOutboxNames,
                                    on connection: MySQLConnection) async throws {
        let stray = try await connection.query("""
            SELECT m.sequence FROM \(names.messages) AS m FORCE INDEX (PRIMARY)
            WHERE m.state = 0 AND m.sequence < ? AND m.partition_no IN \(MySQLValueList.placeholders(partitions.count))
            ORDER BY m.sequence LIMIT 1
            """, [.integer(floor)] + MySQLValueList.padded(partitions)).rows.first?[0].int64
        guard let stray else { return }
        try await connection.query(
            "UPDATE \(names.commitGuard) SET claim_floor = LEAST(claim_floor, ?) WHERE partition_no IN \(MySQLValueList.placeholders(partitions.count))",
            [.integer(stray)] + MySQLValueList.padded(partitions))
    }
}
