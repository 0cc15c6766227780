public import Foundation
import Logging
public import Outbox
import PostgresNIO

extension PostgresOutboxStore {
    public func migrate() async throws {
        try await kit.errors.migrate(partitionCount: configuration.partitionCount) {
            try await PostgresSchema.migrate(client, names: names, partitionCount: configuration.partitionCount, logger: logger)
        }
    }

    public func heartbeat(_ request: OutboxHeartbeat) async throws -> OutboxLeaseGrant {
        try await perform("heartbeat") {
            if request.releasing.isEmpty, let grant = try await renewWhenNothingChanges(request) { return grant }
            return try await client.withTransaction(logger: logger) { connection in
                // FOR UPDATE serialises heartbeats, so two relays never plan from the same snapshot.
                var leases: [OutboxLeasePlanner.Lease] = []
                let leaseRows = try await connection.query(
                    "SELECT partition, owner, expires_at FROM \(unescaped: names.leases) ORDER BY partition FOR UPDATE", logger: logger)
                for try await (partition, owner, expires) in leaseRows.decode((Int, String?, Date).self) {
                    leases.append(.init(partition: partition, owner: owner, expiresAt: expires))
                }
                var registrations: [OutboxLeasePlanner.Registration] = []
                let relayRows = try await connection.query("SELECT relay_id, expires_at, instance FROM \(unescaped: names.relays)", logger: logger)
                for try await (relay, expires, instance) in relayRows.decode((String, Date, String).self) {
                    registrations.append(.init(relayID: relay, expiresAt: expires, instanceID: instance))
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
                if !plan.grant.relayIDInUse {
                    try await connection.query("""
                        INSERT INTO \(unescaped: names.relays) (relay_id, expires_at, in_flight, instance, published)
                        VALUES (\(request.relayID), \(plan.registration.expiresAt), \(Int32(clamping: request.inFlight)), \(plan.registration.instanceID),
                                \(Int64(request.published)))
                        ON CONFLICT (relay_id) DO UPDATE SET expires_at = excluded.expires_at, in_flight = excluded.in_flight,
                                                             instance = excluded.instance, published = excluded.published
                        """, logger: logger)
                }
                if !plan.lapsedRelays.isEmpty {
                    try await connection.query(
                        "DELETE FROM \(unescaped: names.relays) WHERE relay_id = ANY(\(plan.lapsedRelays)::text[])", logger: logger)
                }
                return plan.grant
            }
        }
    }

    /// The usual heartbeat, in one statement: renews the relay's registration and leases, and reads
    /// what the planner would need to change anything else. Answers the grant the full heartbeat
    /// would give when there is nothing to take (no free or lapsed partition while below the fair
    /// share) and no lapsed registration to remove; otherwise `nil`, and the caller runs the full,
    /// serialised heartbeat. An idle relay thus costs one statement per heartbeat, not six.
    func renewWhenNothingChanges(_ request: OutboxHeartbeat) async throws -> OutboxLeaseGrant? {
        let expiry = request.now.addingTimeInterval(request.leaseDuration.timeInterval)
        var query = PostgresQuery(unsafeSQL: """
            WITH registered AS (
                INSERT INTO \(names.relays) AS r (relay_id, expires_at, in_flight, instance, published) VALUES ($1, $2, $3, $5, $6)
                ON CONFLICT (relay_id) DO UPDATE SET expires_at = excluded.expires_at, in_flight = excluded.in_flight,
                                                     published = excluded.published
                WHERE r.instance = excluded.instance
                RETURNING 1),
            renewed AS (
                UPDATE \(names.leases) SET expires_at = $2 WHERE owner = $1 AND EXISTS (SELECT 1 FROM registered) RETURNING partition)
            SELECT (SELECT count(*) FROM registered),
                   (SELECT coalesce(array_agg(partition), '{}') FROM renewed),
                   (SELECT coalesce(array_agg(relay_id), '{}') FROM \(names.relays) WHERE relay_id <> $1 AND expires_at > $4),
                   (SELECT count(*) FROM \(names.relays) WHERE relay_id <> $1 AND expires_at <= $4),
                   (SELECT count(*) FROM \(names.leases) WHERE owner IS DISTINCT FROM $1 AND (owner IS NULL OR expires_at <= $4)),
                   (SELECT count(*) FROM \(names.leases))
            """)
        query.binds.append(request.relayID)
        query.binds.append(expiry)
        query.binds.append(Int32(clamping: request.inFlight))
        query.binds.append(request.now)
        query.binds.append(request.instanceID)
        query.binds.append(Int64(request.published))
        let rows = try await client.query(query, logger: logger)
        for try await (registered, owned, others, lapsed, free, partitionCount) in rows.decode((Int64, [Int32], [String], Int64, Int64, Int64).self) {
            // Another run holds this relay id (or held it and lapsed): the full heartbeat decides.
            guard registered == 1 else { return nil }
            return OutboxLeasePlanner.grantIfNothingChanges(
                relayID: request.relayID, owned: Set(owned.map(Int.init)), otherLiveRelays: others,
                lapsedRelays: Int(lapsed), freePartitions: Int(free), partitionCount: Int(partitionCount))
        }
        return nil
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

    public func claim(partitions: [Int], limit: Int, maximumBytes: Int, now: Date, excluding: [Int64]) async throws -> [OutboxRecord] {
        guard !partitions.isEmpty, limit > 0 else { return [] }
        let wanted = partitions.map(Int32.init)
        let starved = kit.starvation.starved(among: partitions).map(Int32.init)
        return try await perform("claim") {
            // One round trip: the function takes the partitions' exclusive try-locks (a partition
            // is readable only when no enqueueing transaction on it is open), then reads with a
            // snapshot taken after them. See PostgresSchema.version2 and version4.
            let rows = try await client.query("""
                SELECT sequence, id, topic, message_key, message_type, payload, headers, partition, created_at, attempts, last_error
                FROM \(unescaped: names.claimFunction)(\(wanted)::int[], \(names.lockSpace), \(Int64(limit)), \(now), \(excluding)::bigint[],
                                                       \(Int64(clamping: maximumBytes)), \(starved)::int[])
                """, logger: logger)
            let all = try await Self.records(rows)
            // Marker rows name the partitions an enqueue transaction held.
            let heldByWriters = Set(all.lazy.filter { $0.sequence < 0 }.map(\.partition))
            kit.starvation.record(wanted: partitions, locked: Set(partitions).subtracting(heldByWriters))
            return all.filter { $0.sequence >= 0 }
        }
    }

    static func records(_ rows: PostgresRowSequence) async throws -> [OutboxRecord] {
        var records: [OutboxRecord] = []
        for try await row in rows {
            let (sequence, id, topic, key, type, payload, headers, partition, created, attempts, lastError) =
                try row.decode((Int64, UUID, String, String?, String?, ByteBuffer, ByteBuffer, Int, Date, Int, String?).self)
            // The schema fixes every column's type (and the server's encoding keeps text UTF-8):
            // the headers' encoding is the one thing a foreign writer can damage here.
            let stored = OutboxStoredMessage(
                sequence: sequence, partition: partition, id: id, topic: topic, key: key, type: type,
                payload: Array(payload.readableBytesView), headers: Array(headers.readableBytesView), createdAt: created,
                attempts: attempts, lastError: lastError)
            records.append(stored.record)
        }
        return records
    }

    public func acknowledge(_ acknowledgement: OutboxAcknowledgement) async throws -> OutboxAcknowledgementResult {
        guard !acknowledgement.isEmpty else { return OutboxAcknowledgementResult(applied: 0, fenced: 0) }
        let delivered = acknowledgement.delivered.map(\.sequence)
        let retries = acknowledgement.retries
        let dead = acknowledgement.deadLetters
        // One call of the schema's acknowledgement function (version 7): one round trip, and a
        // plan the server keeps. Every write is limited to partitions the relay still leases,
        // locked until commit (fencing).
        let query: PostgresQuery = """
            SELECT applied, owned_partitions FROM \(unescaped: names.acknowledgeFunction)(
                \(acknowledgement.relayID), \(delivered), \(retries.map(\.sequence)), \(retries.map(\.availableAt)),
                \(retries.map(\.error)), \(acknowledgement.now), \(dead.map(\.sequence)), \(dead.map(\.error)),
                \(acknowledgement.retainDelivered))
            """
        return try await perform("acknowledge") {
            let rows = try await client.query(query, logger: logger)
            var applied = 0
            var owned: Set<Int> = []
            for try await (count, partitions) in rows.decode((Int64, [Int32]).self) {
                applied = Int(count)
                owned = Set(partitions.map(Int.init))
            }
            let references = acknowledgement.delivered.map(\.partition) + retries.map(\.partition) + dead.map(\.partition)
            let fenced = references.count { !owned.contains($0) }
            return OutboxAcknowledgementResult(applied: applied, fenced: fenced)
        }
    }

    static func count(_ rows: PostgresRowSequence) async throws -> Int {
        var count = 0
        for try await _ in rows { count += 1 }
        return count
    }
}
