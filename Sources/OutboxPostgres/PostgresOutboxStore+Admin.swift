public import Foundation
import Logging
public import Outbox
import PostgresNIO

extension PostgresOutboxStore {
    public func removeDelivered(finishedBefore cutoff: Date, limit: Int) async throws -> Int {
        try await perform("remove delivered") {
            try await Self.count(client.query("""
                DELETE FROM \(unescaped: names.messages) WHERE sequence IN (
                    SELECT sequence FROM \(unescaped: names.messages) WHERE state = 2 AND finished_at < \(cutoff)
                    ORDER BY finished_at LIMIT \(Int64(limit)))
                RETURNING 1
                """, logger: logger))
        }
    }

    public func status(now: Date) async throws -> OutboxStatus {
        try await perform("status") {
            try await PostgresSchema.requireCurrent(client, names: names, logger: logger)
            var parts = OutboxStatusParts()
            let countRows = try await client.query("""
                SELECT count(*) FILTER (WHERE state = 0)::int, count(*) FILTER (WHERE state = 0 AND attempts > 0)::int,
                       count(*) FILTER (WHERE state = 1)::int, count(*) FILTER (WHERE state = 2)::int,
                       min(created_at) FILTER (WHERE state = 0)
                FROM \(unescaped: names.messages)
                """, logger: logger)
            for try await row in countRows.decode((Int, Int, Int, Int, Date?).self) {
                (parts.pending, parts.retrying, parts.dead, parts.delivered, parts.oldestPending) = row
            }
            // A free lease's expiry may be -infinity, which has no Date: read as microseconds since 1970.
            let leaseRows = try await client.query("""
                SELECT partition, owner, CASE WHEN isfinite(expires_at) THEN (extract(epoch FROM expires_at) * 1000000)::bigint ELSE 0 END
                FROM \(unescaped: names.leases)
                """, logger: logger)
            for try await (partition, owner, expires) in leaseRows.decode((Int, String?, Int64).self) {
                parts.owners.append((partition, owner, Date(timeIntervalSince1970: Double(expires) / 1_000_000)))
            }
            let relayRows = try await client.query(
                "SELECT relay_id, expires_at, in_flight, published FROM \(unescaped: names.relays) WHERE expires_at > \(now)", logger: logger)
            for try await (relayID, expiresAt, inFlight, published) in relayRows.decode((String, Date, Int, Int64).self) {
                parts.relays.append((relayID, expiresAt, inFlight, Int(published)))
            }
            return parts.status(now: now)
        }
    }

    public func backlog(now: Date, countLimit: Int) async throws -> OutboxBacklog {
        try await perform("backlog") {
            // Each part walks one partial index: at most `countLimit` entries, or one probe.
            let rows = try await client.query("""
                SELECT (SELECT count(*) FROM (SELECT 1 FROM \(unescaped: names.messages) WHERE state = 0 LIMIT \(Int64(countLimit))) p)::int,
                       (SELECT count(*) FROM (SELECT 1 FROM \(unescaped: names.messages) WHERE state = 1 LIMIT \(Int64(countLimit))) d)::int,
                       (SELECT created_at FROM \(unescaped: names.messages) WHERE state = 0 ORDER BY sequence LIMIT 1)
                """, logger: logger)
            var backlog = OutboxBacklog(pending: 0, dead: 0, countLimit: countLimit, oldestPendingAge: nil)
            for try await (pending, dead, oldest) in rows.decode((Int, Int, Date?).self) {
                (backlog.pending, backlog.dead, backlog.oldestPendingAge) = (pending, dead, OutboxBacklog.age(of: oldest, now: now))
            }
            return backlog
        }
    }

    public func deadLetters(limit: Int, afterSequence: Int64?) async throws -> [OutboxDeadLetter] {
        try await perform("list dead letters") {
            let rows = try await client.query("""
                SELECT sequence, id, topic, message_key, message_type, payload, headers, partition, created_at, attempts, last_error,
                       coalesce(finished_at, created_at)
                FROM \(unescaped: names.messages) WHERE state = 1 AND sequence > \(afterSequence ?? 0)
                ORDER BY sequence LIMIT \(Int64(limit))
                """, logger: logger)
            var letters: [OutboxDeadLetter] = []
            for try await row in rows {
                let (sequence, id, topic, key, type, payload, headers, partition, created, attempts, lastError, failed) =
                    try row.decode((Int64, UUID, String, String?, String?, ByteBuffer, ByteBuffer, Int, Date, Int, String?, Date).self)
                let message = OutboxMessage(
                    id: id, topic: topic, key: key, type: type, payload: Array(payload.readableBytesView),
                    headers: OutboxHeaderCoding.decodeStored(Array(headers.readableBytesView)).headers, createdAt: created)
                letters.append(OutboxDeadLetter(
                    record: OutboxRecord(message: message, sequence: sequence, partition: partition, attempts: attempts, lastError: lastError),
                    failedAt: failed))
            }
            return letters
        }
    }

    public func retryDeadLetters(sequences: [Int64], now: Date) async throws -> Int {
        let count = try await perform("retry dead letters") {
            try await Self.count(client.query("""
                UPDATE \(unescaped: names.messages) SET state = 0, attempts = 0, available_at = 'epoch', finished_at = NULL
                WHERE sequence = ANY(\(sequences)::bigint[]) AND state = 1 RETURNING 1
                """, logger: logger))
        }
        if count > 0 { notifications.signal() }
        return count
    }

    public func discardDeadLetters(sequences: [Int64]) async throws -> Int {
        try await perform("discard dead letters") {
            try await Self.count(client.query(
                "DELETE FROM \(unescaped: names.messages) WHERE sequence = ANY(\(sequences)::bigint[]) AND state = 1 RETURNING 1",
                logger: logger))
        }
    }
}
