public import Foundation
import Logging
public import Outbox
public import PostgresNIO

/// The inbox on PostgreSQL: `<prefix>_inbox` (one row per group and handled message, its primary
/// key the deduplication) and `<prefix>_inbox_dead`, in the store's schema.
extension PostgresOutboxStore: OutboxInboxStore {
    /// The application's handler: it runs on the connection of the transaction that records the
    /// message; its queries commit with the record or roll back with it.
    public typealias Handler = @Sendable (OutboxInboxMessage, PostgresConnection) async throws -> Void

    public func migrateInbox() async throws {
        let inbox = names.table("inbox"), dead = names.table("inbox_dead")
        try await perform("migrate inbox") {
            try await client.withTransaction(logger: logger) { connection in
                // Two migrations at once would race on CREATE … IF NOT EXISTS; one waits for the other.
                try await connection.query("SELECT pg_advisory_xact_lock(\(names.lockSpace), -1)", logger: logger)
                for statement in [
                    "CREATE SCHEMA IF NOT EXISTS \(names.schema)",
                    """
                    CREATE TABLE IF NOT EXISTS \(inbox) (
                        group_name TEXT NOT NULL, identity TEXT NOT NULL, handled_at TIMESTAMPTZ NOT NULL,
                        PRIMARY KEY (group_name, identity))
                    """,
                    // Retention passes, oldest first per group.
                    "CREATE INDEX IF NOT EXISTS \(names.unquotedTable("inbox"))_handled ON \(inbox) (group_name, handled_at)",
                    """
                    CREATE TABLE IF NOT EXISTS \(dead) (
                        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, group_name TEXT NOT NULL, identity TEXT NOT NULL,
                        topic TEXT NOT NULL, partition INT NOT NULL, "offset" BIGINT NOT NULL, message_key TEXT,
                        payload BYTEA NOT NULL, headers BYTEA NOT NULL, reason TEXT NOT NULL, attempts INT NOT NULL,
                        failed_at TIMESTAMPTZ NOT NULL)
                    """,
                    "CREATE INDEX IF NOT EXISTS \(names.unquotedTable("inbox_dead"))_group ON \(dead) (group_name, id)",
                ] {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
            }
        }
    }

    /// One message is a batch of one: the same transaction, record and handler.
    public func handleOnce(_ message: OutboxInboxMessage, group: String, now: Date, handler: @escaping Handler) async throws -> OutboxInboxOutcome {
        try await handleBatch([message], group: group, now: now, handler: handler)[0]
    }

    public func handleBatch(_ messages: [OutboxInboxMessage], group: String, now: Date, handler: @escaping Handler) async throws -> [OutboxInboxOutcome] {
        let handlerError = OutboxHandlerErrorBox()
        let identities = messages.map(\.identity)
        do {
            return try await perform("handle") {
                try await client.withTransaction(logger: logger) { connection in
                    // Every record in one statement; the identities it inserted are the messages to
                    // handle (a second copy in the batch, or a message recorded before, is not). A
                    // transaction recording a message another one is recording waits here for it,
                    // then finds the row: a duplicate.
                    let rows = try await connection.query("""
                        INSERT INTO \(unescaped: names.table("inbox")) (group_name, identity, handled_at)
                        SELECT \(group), identity, \(now) FROM unnest(\(identities)::text[]) AS identity
                        ON CONFLICT DO NOTHING RETURNING identity
                        """, logger: logger)
                    var inserted = Set<String>()
                    for try await identity in rows.decode(String.self) { inserted.insert(identity) }
                    var outcomes: [OutboxInboxOutcome] = []
                    for message in messages {
                        guard inserted.remove(message.identity) != nil else {
                            outcomes.append(.duplicate)
                            continue
                        }
                        try await handlerError.run { try await handler(message, connection) }
                        outcomes.append(.handled)
                    }
                    return outcomes
                }
            }
        } catch {
            throw handlerError.rethrow(error)
        }
    }

    public func deadLetter(_ message: OutboxInboxMessage, group: String, reason: String, attempts: Int, now: Date) async throws {
        try await perform("dead-letter") {
            try await client.withTransaction(logger: logger) { connection in
                try await connection.query("""
                    INSERT INTO \(unescaped: names.table("inbox")) (group_name, identity, handled_at)
                    VALUES (\(group), \(message.identity), \(now)) ON CONFLICT DO NOTHING
                    """, logger: logger)
                try await connection.query("""
                    INSERT INTO \(unescaped: names.table("inbox_dead"))
                        (group_name, identity, topic, partition, "offset", message_key, payload, headers, reason, attempts, failed_at)
                    VALUES (\(group), \(message.identity), \(message.partition.topic), \(Int32(message.partition.partition)), \(message.offset),
                            \(message.key), \(ByteBuffer(bytes: message.payload)), \(ByteBuffer(bytes: OutboxHeaderCoding.encode(message.headers))),
                            \(reason), \(Int32(clamping: attempts)), \(now))
                    """, logger: logger)
            }
        }
    }

    public func inboxDeadLetters(group: String, limit: Int, afterID: Int64?) async throws -> [OutboxInboxDeadLetter] {
        try await perform("list inbox dead letters") {
            let rows = try await client.query("""
                SELECT id, group_name, topic, partition, "offset", message_key, payload, headers, reason, attempts, failed_at
                FROM \(unescaped: names.table("inbox_dead")) WHERE group_name = \(group) AND id > \(afterID ?? 0)
                ORDER BY id LIMIT \(Int64(limit))
                """, logger: logger)
            return try await Self.inboxDeadLetters(rows)
        }
    }

    public func takeInboxDeadLetters(group: String, ids: [Int64]) async throws -> [OutboxInboxDeadLetter] {
        guard !ids.isEmpty else { return [] }
        return try await perform("take inbox dead letters") {
            try await client.withTransaction(logger: logger) { connection in
                let rows = try await connection.query("""
                    DELETE FROM \(unescaped: names.table("inbox_dead")) WHERE group_name = \(group) AND id = ANY(\(ids))
                    RETURNING id, group_name, topic, partition, "offset", message_key, payload, headers, reason, attempts, failed_at
                    """, logger: logger)
                let taken = try await Self.inboxDeadLetters(rows).sorted { $0.id < $1.id }
                let identities = taken.map(\.message.identity)
                try await connection.query("""
                    DELETE FROM \(unescaped: names.table("inbox")) WHERE group_name = \(group) AND identity = ANY(\(identities))
                    """, logger: logger)
                return taken
            }
        }
    }

    public func removeHandled(group: String, before cutoff: Date, limit: Int) async throws -> Int {
        try await perform("remove handled") {
            let rows = try await client.query("""
                DELETE FROM \(unescaped: names.table("inbox")) WHERE group_name = \(group) AND identity IN (
                    SELECT identity FROM \(unescaped: names.table("inbox"))
                    WHERE group_name = \(group) AND handled_at < \(cutoff) ORDER BY handled_at LIMIT \(Int64(limit)))
                RETURNING 1
                """, logger: logger)
            var count = 0
            for try await _ in rows { count += 1 }
            return count
        }
    }

    private static func inboxDeadLetters(_ rows: PostgresRowSequence) async throws -> [OutboxInboxDeadLetter] {
        var letters: [OutboxInboxDeadLetter] = []
        for try await row in rows {
            let (id, group, topic, partition, offset, key, payload, headers, reason, attempts, failedAt) =
                try row.decode((Int64, String, String, Int32, Int64, String?, ByteBuffer, ByteBuffer, String, Int32, Date).self)
            let message = OutboxInboxMessage(
                partition: OutboxInboxPartition(topic: topic, partition: partition), offset: offset, key: key,
                payload: Array(buffer: payload), headers: OutboxHeaderCoding.decodeStored(Array(buffer: headers)).headers)
            letters.append(OutboxInboxDeadLetter(id: id, group: group, message: message, reason: reason, attempts: Int(attempts), failedAt: failedAt))
        }
        return letters
    }
}
