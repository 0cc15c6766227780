public import Foundation
import Logging
public import Outbox
import PostgresNIO

extension PostgresOutboxStore {
    public func migrate() async throws {
        guard (1...4096).contains(configuration.partitionCount) else {
            throw OutboxError(code: .invalidConfiguration, operation: "migrate", message: "The partition count must be between 1 and 4096.")
        }
        try await perform("migrate") {
            try await PostgresSchema.migrate(client, names: names, partitionCount: configuration.partitionCount, logger: logger)
        }
    }

    public func heartbeat(_ request: OutboxHeartbeat) async throws -> OutboxLeaseGrant {
        try await perform("heartbeat") {
            try await client.withTransaction(logger: logger) { connection in
                // FOR UPDATE serialises heartbeats, so two relays never plan from the same snapshot.
                var leases: [OutboxLeasePlanner.Lease] = []
                let leaseRows = try await connection.query(
                    "SELECT partition, owner, expires_at FROM \(unescaped: names.leases) ORDER BY partition FOR UPDATE", logger: logger)
                for try await (partition, owner, expires) in leaseRows.decode((Int, String?, Date).self) {
                    leases.append(.init(partition: partition, owner: owner, expiresAt: expires))
                }
                var registrations: [OutboxLeasePlanner.Registration] = []
                let relayRows = try await connection.query("SELECT relay_id, expires_at FROM \(unescaped: names.relays)", logger: logger)
                for try await (relay, expires) in relayRows.decode((String, Date).self) {
                    registrations.append(.init(relayID: relay, expiresAt: expires))
                }
                let plan = OutboxLeasePlanner.plan(request, leases: leases, registrations: registrations)
                if !plan.changedLeases.isEmpty {
                    let partitions = plan.changedLeases.map { Int32($0.partition) }
                    let owners = plan.changedLeases.map { $0.owner ?? "" }
                    let expiries = plan.changedLeases.map(\.expiresAt)
                    try await connection.query("""
                        UPDATE \(unescaped: names.leases) AS l SET owner = NULLIF(u.owner, ''), expires_at = u.expires_at
                        FROM unnest(\(partitions)::int[], \(owners)::text[], \(expiries)::timestamptz[]) AS u(partition, owner, expires_at)
                        WHERE l.partition = u.partition
                        """, logger: logger)
                }
                try await connection.query("""
                    INSERT INTO \(unescaped: names.relays) (relay_id, expires_at, in_flight)
                    VALUES (\(request.relayID), \(plan.registration.expiresAt), \(Int32(clamping: request.inFlight)))
                    ON CONFLICT (relay_id) DO UPDATE SET expires_at = excluded.expires_at, in_flight = excluded.in_flight
                    """, logger: logger)
                if !plan.lapsedRelays.isEmpty {
                    try await connection.query(
                        "DELETE FROM \(unescaped: names.relays) WHERE relay_id = ANY(\(plan.lapsedRelays)::text[])", logger: logger)
                }
                return plan.grant
            }
        }
    }

    public func resign(relayID: String) async throws {
        try await perform("resign") {
            try await client.withTransaction(logger: logger) { connection in
                try await connection.query(
                    "UPDATE \(unescaped: names.leases) SET owner = NULL, expires_at = '-infinity' WHERE owner = \(relayID)", logger: logger)
                try await connection.query("DELETE FROM \(unescaped: names.relays) WHERE relay_id = \(relayID)", logger: logger)
            }
        }
    }

    public func claim(partitions: [Int], limit: Int, now: Date) async throws -> [OutboxRecord] {
        guard !partitions.isEmpty, limit > 0 else { return [] }
        let wanted = partitions.map(Int32.init)
        return try await perform("claim") {
            try await client.withTransaction(logger: logger) { connection in
                // A partition is readable only when no enqueueing transaction on it is open (their
                // shared locks block this exclusive try-lock). The claim itself is a second
                // statement, so its snapshot is taken after the locks.
                //
                // The same statement pins the claim's plan for this transaction: with stale or no
                // statistics the planner chose a bitmap scan plus a sort of *every* pending row
                // (118 ms at 100,000 rows) over the ordered index walk that LIMIT stops (0.8 ms).
                let clearRows = try await connection.query("""
                    SELECT coalesce(array_agg(p), '{}'), \(unescaped: Self.claimPlannerSettings)
                    FROM unnest(\(wanted)::int[]) AS p
                    WHERE pg_try_advisory_xact_lock(\(names.lockSpace), p)
                    """, logger: logger)
                var clear: [Int32] = []
                for try await (value, _, _) in clearRows.decode(([Int32], String, String).self) { clear = value }
                guard !clear.isEmpty else { return [] }
                let rows = try await connection.query("""
                    SELECT m.sequence, m.id, m.topic, m.message_key, m.message_type, m.payload, m.headers,
                           m.partition, m.created_at, m.attempts, m.last_error
                    FROM \(unescaped: names.messages) AS m
                    WHERE m.state = 0 AND m.available_at <= \(now) AND m.partition = ANY(\(clear)::int[])
                      AND NOT EXISTS (
                          SELECT 1 FROM \(unescaped: names.messages) AS e
                          WHERE e.state = 0 AND e.attempts > 0 AND e.partition = m.partition
                            AND e.message_key = m.message_key AND e.sequence < m.sequence AND e.available_at > \(now))
                    ORDER BY m.sequence
                    LIMIT \(Int64(limit))
                    """, logger: logger)
                return try await Self.records(rows)
            }
        }
    }

    /// Planner settings for the rest of a claim transaction: walk the pending index in order.
    static let claimPlannerSettings = "set_config('enable_sort', 'off', true), set_config('enable_bitmapscan', 'off', true)"

    static func records(_ rows: PostgresRowSequence) async throws -> [OutboxRecord] {
        var records: [OutboxRecord] = []
        for try await row in rows {
            let (sequence, id, topic, key, type, payload, headers, partition, created, attempts, lastError) =
                try row.decode((Int64, UUID, String, String?, String?, ByteBuffer, ByteBuffer, Int, Date, Int, String?).self)
            let (decoded, damage) = OutboxHeaderCoding.decodeStored(Array(headers.readableBytesView))
            let message = OutboxMessage(
                id: id, topic: topic, key: key, type: type, payload: Array(payload.readableBytesView), headers: decoded, createdAt: created)
            records.append(OutboxRecord(message: message, sequence: sequence, partition: partition, attempts: attempts, lastError: lastError,
                                        damage: damage))
        }
        return records
    }

    public func acknowledge(_ acknowledgement: OutboxAcknowledgement) async throws -> OutboxAcknowledgementResult {
        guard !acknowledgement.isEmpty else { return OutboxAcknowledgementResult(applied: 0, fenced: 0) }
        return try await perform("acknowledge") {
            try await client.withTransaction(logger: logger) { connection in
                // FOR SHARE keeps the leases ours until commit: a heartbeat of another relay cannot
                // take them between this check and the writes (fencing).
                var owned: Set<Int> = []
                let ownedRows = try await connection.query(
                    "SELECT partition FROM \(unescaped: names.leases) WHERE owner = \(acknowledgement.relayID) FOR SHARE", logger: logger)
                for try await partition in ownedRows.decode(Int.self) { owned.insert(partition) }
                var applied = 0
                var fenced = 0
                let delivered = acknowledgement.delivered.filter { owned.contains($0.partition) }.map(\.sequence)
                fenced += acknowledgement.delivered.count - delivered.count
                if !delivered.isEmpty {
                    let query: PostgresQuery = acknowledgement.retainDelivered
                        ? "UPDATE \(unescaped: names.messages) SET state = 2, finished_at = \(acknowledgement.now) WHERE sequence = ANY(\(delivered)::bigint[]) AND state = 0 RETURNING 1"
                        : "DELETE FROM \(unescaped: names.messages) WHERE sequence = ANY(\(delivered)::bigint[]) AND state = 0 RETURNING 1"
                    applied += try await Self.count(connection.query(query, logger: logger))
                }
                let retries = acknowledgement.retries.filter { owned.contains($0.partition) }
                fenced += acknowledgement.retries.count - retries.count
                if !retries.isEmpty {
                    applied += try await Self.count(connection.query("""
                        UPDATE \(unescaped: names.messages) AS m
                        SET attempts = m.attempts + 1, available_at = u.available_at, last_error = u.error
                        FROM unnest(\(retries.map(\.sequence))::bigint[], \(retries.map(\.availableAt))::timestamptz[], \(retries.map(\.error))::text[])
                             AS u(sequence, available_at, error)
                        WHERE m.sequence = u.sequence AND m.state = 0
                        RETURNING 1
                        """, logger: logger))
                }
                let dead = acknowledgement.deadLetters.filter { owned.contains($0.partition) }
                fenced += acknowledgement.deadLetters.count - dead.count
                if !dead.isEmpty {
                    applied += try await Self.count(connection.query("""
                        UPDATE \(unescaped: names.messages) AS m
                        SET attempts = m.attempts + 1, state = 1, last_error = u.error, finished_at = \(acknowledgement.now)
                        FROM unnest(\(dead.map(\.sequence))::bigint[], \(dead.map(\.error))::text[]) AS u(sequence, error)
                        WHERE m.sequence = u.sequence AND m.state = 0
                        RETURNING 1
                        """, logger: logger))
                }
                return OutboxAcknowledgementResult(applied: applied, fenced: fenced)
            }
        }
    }

    static func count(_ rows: PostgresRowSequence) async throws -> Int {
        var count = 0
        for try await _ in rows { count += 1 }
        return count
    }
}
