public import Foundation
public import Outbox

extension MySQLOutboxStore {
    public func migrate() async throws {
        try await kit.errors.migrate(partitionCount: configuration.partitionCount) {
            try await pool.withConnection { connection in
                try await MySQLSchema.migrate(connection, names: names, partitionCount: configuration.partitionCount)
            }
        }
    }

    public func heartbeat(_ request: OutboxHeartbeat) async throws -> OutboxLeaseGrant {
        try await perform("heartbeat") {
            if request.releasing.isEmpty, let grant = try await MySQLHeartbeatRenewal.renew(request, names: names, pool: pool) { return grant }
            return try await transaction { connection in
                // FOR UPDATE serialises heartbeats, so two relays never plan from the same snapshot.
                let leaseRows = try await connection.query(
                    "SELECT partition_no, owner, expires_at FROM \(names.leases) ORDER BY partition_no FOR UPDATE").rows
                let leases = leaseRows.map { row in
                    OutboxLeasePlanner.Lease(partition: Int(row[0].int64 ?? 0), owner: row[1].string,
                                             expiresAt: MySQLTime.date(row[2].int64 ?? 0))
                }
                let registrations = try await connection.query("SELECT relay_id, expires_at, instance FROM \(names.relays)").rows.map { row in
                    OutboxLeasePlanner.Registration(relayID: row[0].string ?? "", expiresAt: MySQLTime.date(row[1].int64 ?? 0),
                                                    instanceID: row[2].string ?? "")
                }
                let plan = OutboxLeasePlanner.plan(request, leases: leases, registrations: registrations)
                // Renewals share one owner and expiry: one UPDATE per distinct pair, not per partition.
                let groups = Dictionary(grouping: plan.changedLeases) { LeaseChange(owner: $0.owner, expiresAt: $0.expiresAt) }
                for (change, changed) in groups {
                    let partitions = changed.map { MySQLValue.int($0.partition) }
                    try await connection.query(
                        "UPDATE \(names.leases) SET owner = ?, expires_at = ? WHERE partition_no IN \(MySQLValueList.placeholders(partitions.count))",
                        [.text(change.owner), .integer(MySQLTime.microseconds(change.expiresAt))] + MySQLValueList.padded(partitions))
                }
                if !plan.grant.relayIDInUse {
                    try await connection.query("""
                        INSERT INTO \(names.relays) (relay_id, expires_at, in_flight, instance, published) VALUES (?, ?, ?, ?, ?)
                        ON DUPLICATE KEY UPDATE expires_at = VALUES(expires_at), in_flight = VALUES(in_flight), instance = VALUES(instance),
                                                published = VALUES(published)
                        """, [.text(request.relayID), .integer(MySQLTime.microseconds(plan.registration.expiresAt)),
                              .int(Int32(clamping: request.inFlight)), .text(plan.registration.instanceID), .integer(Int64(request.published))])
                }
                if !plan.lapsedRelays.isEmpty {
                    let lapsed = plan.lapsedRelays.map { MySQLValue.text($0) }
                    try await connection.query(
                        "DELETE FROM \(names.relays) WHERE relay_id IN \(MySQLValueList.placeholders(lapsed.count))", MySQLValueList.padded(lapsed))
                }
                return plan.grant
            }
        }
    }

    public func resign(relayID: String) async throws {
        try await perform("resign") {
            try await transaction { connection in
                try await connection.query("UPDATE \(names.leases) SET owner = NULL, expires_at = 0 WHERE owner = ?", [.text(relayID)])
                try await connection.query("DELETE FROM \(names.relays) WHERE relay_id = ?", [.text(relayID)])
            }
        }
    }

    public func claim(partitions: [Int], limit: Int, maximumBytes: Int, now: Date, excluding: [Int64]) async throws -> [OutboxRecord] {
        guard !partitions.isEmpty, limit > 0 else { return [] }
        let wanted = partitions.sorted().map { MySQLValue.int($0) }
        let starved = kit.starvation.starved(among: partitions).map { MySQLValue.int($0) }
        return try await perform("claim") {
            // An idle relay's claims: one statement each instead of a transaction of four.
            if starved.isEmpty, lastClaimFoundNothing.load(ordering: .relaxed), try await !hasPendingRows(in: wanted) { return [] }
            let claimed: [OutboxRecord] = try await transaction { connection in
                if !starved.isEmpty { try await waitForStarvedPartitions(starved, on: connection) }
                // A partition is readable only when no enqueueing transaction on it is open (their
                // shared locks make SKIP LOCKED leave its guard row out). The read is a second
                // statement, so at READ COMMITTED its snapshot is taken after the locks.
                let guards = try await connection.query(
                    "SELECT partition_no, claim_floor FROM \(names.commitGuard) WHERE partition_no IN \(MySQLValueList.placeholders(wanted.count)) FOR UPDATE SKIP LOCKED",
                    MySQLValueList.padded(wanted)).rows
                let clear = guards.compactMap { $0[0].int64 }.map { MySQLValue.integer($0) }
                kit.starvation.record(wanted: partitions, locked: Set(clear.compactMap { $0.int64.map(Int.init) }))
                guard !clear.isEmpty else { return [] }
                let floor = MySQLClaimFloor.start(guards.map { $0[1].int64 ?? 0 })
                let skipped = Self.excludedInClaim(excluding).map { MySQLValue.integer($0) }
                let rows = try await connection.query(
                    Self.claimSQL(names, partitions: clear.count, skipped: skipped.count),
                    Self.claimValues(floor: floor, now: now, partitions: clear, skipped: skipped, limit: limit, maximumBytes: maximumBytes)).rows
                let records = try rows.map(Self.record)
                if let raised = MySQLClaimFloor.raised(claimed: records.map(\.sequence), inFlight: excluding) {
                    // Messages are flowing (perhaps from another process): probe at full speed again.
                    wakeUp.noteActivity()
                    try await connection.query(MySQLClaimFloor.raiseSQL(names, partitions: clear.count),
                                               [.integer(raised), .integer(raised)] + MySQLValueList.padded(clear))
                } else if floor > 0 {
                    try await MySQLClaimFloor.lowerBelowStrayRows(floor, partitions: clear, names: names, on: connection)
                }
                return records
            }
            lastClaimFoundNothing.store(claimed.isEmpty, ordering: .relaxed)
            return claimed
        }
    }

    /// Whether the partitions have any pending row, in one statement outside a transaction: asked
    /// before the claim transaction when the last claim found nothing, so an idle relay's claims
    /// cost one statement. It walks the messages table (pending rows only, schema version 8) from
    /// its start, not from the claim floors, so it also sees rows below a floor
    /// (``MySQLClaimFloor/lowerBelowStrayRows(_:partitions:names:on:)``); when the relay is idle
    /// the table holds few rows. Rows committed after it looked are found by the next claim, as
    /// they would be after a claim that found nothing.
    private func hasPendingRows(in partitions: [MySQLValue]) async throws -> Bool {
        try await pool.query(
            "SELECT 1 FROM \(names.messages) FORCE INDEX (PRIMARY) WHERE state = 0 AND partition_no IN \(MySQLValueList.placeholders(partitions.count)) LIMIT 1",
            MySQLValueList.padded(partitions)).rows.isEmpty == false
    }

    /// Waits, up to a second, for the guard rows of partitions the claims keep finding held by
    /// enqueue transactions (``OutboxPartitionStarvation``): behind the transactions open now, and
    /// ahead of later writers, whose shared requests queue behind this waiting exclusive one.
    private func waitForStarvedPartitions(_ starved: [MySQLValue], on connection: MySQLConnection) async throws {
        try await connection.execute("SET SESSION innodb_lock_wait_timeout = 1", operation: "claim")
        do {
            try await connection.query(
                "SELECT partition_no FROM \(names.commitGuard) WHERE partition_no IN \(MySQLValueList.placeholders(starved.count)) FOR UPDATE",
                MySQLValueList.padded(starved))
        } catch let error as MySQLError where error.code == 1205 {
            // Still held after a second: the statement alone failed; the claim goes on without them.
        }
        try await connection.execute("SET SESSION innodb_lock_wait_timeout = DEFAULT", operation: "claim")
    }

    /// The most in-flight sequences a claim leaves out by list: with the partitions (at most 4,096),
    /// the list stays far under MySQL's 65,535 placeholders per statement whatever the batch size.
    static let maximumExcludedInClaim = 16_384

    /// The in-flight sequences the claim's list leaves out: all of them, or the lowest
    /// ``maximumExcludedInClaim`` (the ones the claim, walking in sequence order, would meet
    /// first). Rows in flight that the list misses come back and the relay drops them.
    static func excludedInClaim(_ excluding: [Int64]) -> [Int64] {
        guard excluding.count > maximumExcludedInClaim else { return excluding }
        return Array(excluding.sorted().prefix(maximumExcludedInClaim))
    }

    /// The claim's read, for `partitions` clear partitions and `skipped` sequences in flight; its
    /// values in order are ``claimValues(floor:now:partitions:skipped:limit:maximumBytes:)``.
    ///
    /// The running payload total is taken over the candidates' sequences and sizes only, and the
    /// rows within the byte bound are then read by primary key: a window over whole rows made the
    /// server copy every payload twice (into the candidates, then into the window's table), which
    /// measured about a third of a 500-row claim. The outer query keeps the rows up to the one
    /// whose running total reaches the byte bound, so the client never receives a whole batch of
    /// large messages at once.
    static func claimSQL(_ names: MySQLOutboxNames, partitions: Int, skipped: Int) -> String {
        """
            SELECT m.sequence, m.id, m.topic, m.message_key, m.message_type, m.payload, m.headers,
                   m.partition_no, m.created_at, m.attempts, m.last_error
            FROM (SELECT c.sequence, c.size, SUM(c.size) OVER (ORDER BY c.sequence) AS running
                  FROM (\(claimCandidatesSQL(names, partitions: partitions, skipped: skipped))) AS c) AS w
            JOIN \(names.messages) AS m ON m.sequence = w.sequence
            WHERE w.running - w.size < ?
            ORDER BY w.sequence
            """
    }

    /// The claim's values, in the order of ``claimSQL(_:partitions:skipped:)``'s placeholders.
    static func claimValues(floor: Int64, now: Date, partitions: [MySQLValue], skipped: [MySQLValue],
                            limit: Int, maximumBytes: Int) -> [MySQLValue] {
        let now = MySQLValue.integer(MySQLTime.microseconds(now))
        let partitionList = MySQLValueList.padded(partitions)
        return [.integer(floor), now] + partitionList + (skipped.isEmpty ? [] : MySQLValueList.padded(skipped))
            + partitionList + [now, now, .int(limit), .integer(Int64(min(maximumBytes, Int(Int64.max))))]
    }

    /// The claim's candidates in sequence order, with their payload sizes: the walk goes along the
    /// primary key (the messages table holds only pending rows, schema version 8) from the
    /// partitions' lowest claim floor (``MySQLClaimFloor``), past the entries of rows already
    /// drained.
    ///
    /// A row is held back while an earlier row of its key waits for a retry. Those rows are listed
    /// in `<prefix>_waiting` (schema version 7); the messages table stays the truth, so a probe
    /// counts a listed row only while its message is pending with attempts and not yet due (a
    /// listing left behind, say by a `TRUNCATE`, holds nothing back). That per-row probe measured
    /// about a sixth of a 500-row claim, so it runs only when the claim's partitions have a row
    /// waiting for a retry at all: the first `NOT EXISTS` does not depend on the row, so the
    /// server evaluates it once per claim.
    static func claimCandidatesSQL(_ names: MySQLOutboxNames, partitions: Int, skipped: Int) -> String {
        // The rows this relay has in flight (none: no clause, another prepared shape).
        let skipClause = skipped == 0 ? "" : "AND m.sequence NOT IN \(MySQLValueList.placeholders(skipped))"
        return """
            SELECT m.sequence, LENGTH(m.payload) AS size
            FROM \(names.messages) AS m FORCE INDEX (PRIMARY)
            WHERE m.state = 0 AND m.sequence >= ? AND m.available_at <= ? AND m.partition_no IN \(MySQLValueList.placeholders(partitions))
              \(skipClause)
              AND (NOT EXISTS (
                       SELECT 1 FROM \(names.waiting) AS r JOIN \(names.messages) AS rm ON rm.sequence = r.sequence
                       WHERE r.partition_no IN \(MySQLValueList.placeholders(partitions))
                         AND rm.state = 0 AND rm.attempts > 0 AND rm.available_at > ?)
                   OR NOT EXISTS (
                       SELECT 1 FROM \(names.waiting) AS e JOIN \(names.messages) AS em ON em.sequence = e.sequence
                       WHERE e.partition_no = m.partition_no AND e.message_key = m.message_key AND e.sequence < m.sequence
                         AND em.state = 0 AND em.attempts > 0 AND em.available_at > ?))
            ORDER BY m.sequence
            LIMIT ?
            """
    }

    /// Reads a row leniently (see ``OutboxStoredMessage``): text columns are binary here, so bytes
    /// that are not UTF-8 are damage, not text decoded with replacement characters.
    static func record(_ row: MySQLRow) throws -> OutboxRecord {
        var damage: [String] = []
        func text(_ index: Int, _ name: String) -> String? {
            guard let bytes = row[index].bytesValue else { return nil }
            guard let text = String(validating: bytes, as: UTF8.self) else {
                damage.append("the \(name) is not UTF-8 text")
                return nil
            }
            return text
        }
        let key = text(3, "key"), type = text(4, "type"), topic = text(2, "topic")
        let stored = OutboxStoredMessage(
            sequence: row[0].int64 ?? 0, partition: Int(row[7].int64 ?? 0), id: row[1].bytesValue.flatMap(UUID.init(bytes:)),
            topic: topic, key: key, type: type, payload: row[5].bytesValue, headers: row[6].bytesValue,
            createdAt: row[8].int64.map(MySQLTime.date), attempts: Int(row[9].int64 ?? 0), lastError: row[10].string, damage: damage)
        return stored.record
    }

    public func acknowledge(_ acknowledgement: OutboxAcknowledgement) async throws -> OutboxAcknowledgementResult {
        guard !acknowledgement.isEmpty else { return OutboxAcknowledgementResult(applied: 0, fenced: 0) }
        return try await perform("acknowledge") {
            try await transaction { connection in
                // A shared lock keeps the leases ours until commit: a heartbeat of another relay
                // cannot take them between this check and the writes (fencing). Each lease also
                // says whether its partition lists a message waiting for a retry, so a delivery
                // unlists only where there is something to unlist: an extra `DELETE … IN (…)` per
                // acknowledgement measured 0.65 ms at a million rows, against 6–7 ms for the
                // delete of the 500 messages. Only the lease's owner lists messages of a partition.
                let leases = try await connection.query("""
                    SELECT l.partition_no, EXISTS (SELECT 1 FROM \(names.waiting) AS w WHERE w.partition_no = l.partition_no)
                    FROM \(names.leases) AS l WHERE l.owner = ? LOCK IN SHARE MODE
                    """, [.text(acknowledgement.relayID)]).rows
                let owned = Set(leases.compactMap { $0[0].int64.map(Int.init) })
                let listing = Set(leases.filter { $0[1].int64 != 0 }.compactMap { $0[0].int64.map(Int.init) })
                var applied = 0
                var fenced = 0
                let now = MySQLValue.integer(MySQLTime.microseconds(acknowledgement.now))
                let ours = acknowledgement.delivered.filter { owned.contains($0.partition) }
                let delivered = ours.map { MySQLValue.integer($0.sequence) }
                fenced += acknowledgement.delivered.count - delivered.count
                for slice in MySQLValueList.slices(delivered) {
                    let selection = "sequence IN \(MySQLValueList.placeholders(slice.count))"
                    if acknowledgement.retainDelivered {
                        try await connection.query(MySQLFinishedMessages.finishSQL(names, deadLetter: false, selection: selection),
                                                   [now] + MySQLValueList.padded(slice))
                    }
                    applied += try await connection.query(MySQLFinishedMessages.deletePendingSQL(names, selection: selection),
                                                          MySQLValueList.padded(slice)).affectedRows
                }
                // A delivered message that had waited for a retry no longer holds back its key.
                let unlisted = ours.filter { listing.contains($0.partition) }.map { MySQLValue.integer($0.sequence) }
                for slice in MySQLValueList.slices(unlisted) {
                    try await connection.query("DELETE FROM \(names.waiting) WHERE sequence IN \(MySQLValueList.placeholders(slice.count))",
                                               MySQLValueList.padded(slice))
                }
                for retry in acknowledgement.retries {
                    guard owned.contains(retry.partition) else { fenced += 1; continue }
                    let updated = try await connection.query("""
                        UPDATE \(names.messages) SET attempts = attempts + 1, available_at = ?, last_error = ?
                        WHERE sequence = ? AND state = 0
                        """, [.integer(MySQLTime.microseconds(retry.availableAt)), .text(retry.error), .integer(retry.sequence)]).affectedRows
                    applied += updated
                    // Listed as waiting, in the same transaction: from its commit the message holds
                    // back the rest of its key (see `claimCandidatesSQL`). The update keeps a listing
                    // left behind by a `TRUNCATE` from naming another partition or key.
                    if updated > 0 {
                        try await connection.query("""
                            INSERT INTO \(names.waiting) (sequence, partition_no, message_key)
                            SELECT sequence, partition_no, message_key FROM \(names.messages) WHERE sequence = ? AND state = 0
                            ON DUPLICATE KEY UPDATE partition_no = VALUES(partition_no), message_key = VALUES(message_key)
                            """, [.integer(retry.sequence)])
                    }
                }
                for dead in acknowledgement.deadLetters {
                    guard owned.contains(dead.partition) else { fenced += 1; continue }
                    try await connection.query(MySQLFinishedMessages.finishSQL(names, deadLetter: true, selection: "sequence = ?"),
                                               [.text(dead.error), now, .integer(dead.sequence)])
                    applied += try await connection.query(MySQLFinishedMessages.deletePendingSQL(names, selection: "sequence = ?"),
                                                          [.integer(dead.sequence)]).affectedRows
                    try await connection.query("DELETE FROM \(names.waiting) WHERE sequence = ?", [.integer(dead.sequence)])
                }
                return OutboxAcknowledgementResult(applied: applied, fenced: fenced)
            }
        }
    }
}

/// One distinct (owner, expiry) pair of a heartbeat's lease changes.
private struct LeaseChange: Hashable {
    var owner: String?
    var expiresAt: Date
}
