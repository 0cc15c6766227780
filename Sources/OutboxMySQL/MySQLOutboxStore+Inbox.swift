public import Foundation
public import Outbox

/// The inbox on MySQL/MariaDB: `<prefix>_inbox` (one row per group and handled message, its primary
/// key the deduplication) and `<prefix>_inbox_dead`. Text travels as bytes, as in the outbox tables.
extension MySQLOutboxStore: OutboxInboxStore {
    /// The application's handler: it runs on the connection of the transaction that records the
    /// message; its statements commit with the record or roll back with it.
    public typealias Handler = @Sendable (OutboxInboxMessage, MySQLConnection) async throws -> Void

    public func migrateInbox() async throws {
        let inbox = names.table("inbox"), dead = names.table("inbox_dead")
        try await perform("migrate inbox") {
            try await pool.withConnection { connection in
                try await connection.execute("""
                    CREATE TABLE IF NOT EXISTS \(inbox) (
                        group_name VARBINARY(255) NOT NULL,
                        identity VARBINARY(512) NOT NULL,
                        handled_at BIGINT NOT NULL,
                        PRIMARY KEY (group_name, identity),
                        KEY outbox_inbox_handled (group_name, handled_at)
                    ) ENGINE=InnoDB
                    """, operation: "migrate inbox")
                try await connection.execute("""
                    CREATE TABLE IF NOT EXISTS \(dead) (
                        id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
                        group_name VARBINARY(255) NOT NULL,
                        identity VARBINARY(512) NOT NULL,
                        topic VARBINARY(1024) NOT NULL,
                        partition_no INT NOT NULL,
                        offset_no BIGINT NOT NULL,
                        message_key VARBINARY(1024) NULL,
                        payload LONGBLOB NOT NULL,
                        headers MEDIUMBLOB NOT NULL,
                        reason TEXT CHARACTER SET utf8mb4 NOT NULL,
                        attempts INT NOT NULL,
                        failed_at BIGINT NOT NULL,
                        KEY outbox_inbox_dead_group (group_name, id)
                    ) ENGINE=InnoDB
                    """, operation: "migrate inbox")
            }
        }
    }

    public func handleOnce(_ message: OutboxInboxMessage, group: String, now: Date, handler: @escaping Handler) async throws -> OutboxInboxOutcome {
        let handlerError = OutboxHandlerErrorBox()
        do {
            return try await perform("handle") {
                try await pool.withTransaction { connection in
                    // Not INSERT IGNORE, which would also hide a value too long for its column. A
                    // second transaction recording the same message waits here for the first.
                    let inserted = try await connection.query("""
                        INSERT INTO \(names.table("inbox")) (group_name, identity, handled_at) VALUES (?, ?, ?)
                        ON DUPLICATE KEY UPDATE group_name = group_name
                        """, [.bytes(Array(group.utf8)), .bytes(Array(message.identity.utf8)), .integer(MySQLTime.microseconds(now))]).affectedRows
                    guard inserted == 1 else { return .duplicate }
                    try await handlerError.run { try await handler(message, connection) }
                    return .handled
                }
            }
        } catch {
            throw handlerError.rethrow(error)
        }
    }

    public func deadLetter(_ message: OutboxInboxMessage, group: String, reason: String, attempts: Int, now: Date) async throws {
        try await perform("dead-letter") {
            try await pool.withTransaction { connection in
                try await connection.query("""
                    INSERT INTO \(names.table("inbox")) (group_name, identity, handled_at) VALUES (?, ?, ?)
                    ON DUPLICATE KEY UPDATE group_name = group_name
                    """, [.bytes(Array(group.utf8)), .bytes(Array(message.identity.utf8)), .integer(MySQLTime.microseconds(now))])
                try await connection.query("""
                    INSERT INTO \(names.table("inbox_dead"))
                        (group_name, identity, topic, partition_no, offset_no, message_key, payload, headers, reason, attempts, failed_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """, [.bytes(Array(group.utf8)), .bytes(Array(message.identity.utf8)), .bytes(Array(message.partition.topic.utf8)),
                          .int(Int(message.partition.partition)), .integer(message.offset), message.key.map { .bytes(Array($0.utf8)) } ?? .null,
                          .bytes(message.payload), .bytes(OutboxHeaderCoding.encode(message.headers)), .text(reason), .int(attempts),
                          .integer(MySQLTime.microseconds(now))])
            }
        }
    }

    public func inboxDeadLetters(group: String, limit: Int, afterID: Int64?) async throws -> [OutboxInboxDeadLetter] {
        try await perform("list inbox dead letters") {
            try await pool.query("""
                SELECT id, group_name, topic, partition_no, offset_no, message_key, payload, headers, reason, attempts, failed_at
                FROM \(names.table("inbox_dead")) WHERE group_name = ? AND id > ? ORDER BY id LIMIT ?
                """, [.bytes(Array(group.utf8)), .integer(afterID ?? 0), .int(limit)]).rows.map(Self.inboxDeadLetter)
        }
    }

    public func takeInboxDeadLetters(group: String, ids: [Int64]) async throws -> [OutboxInboxDeadLetter] {
        guard !ids.isEmpty else { return [] }
        return try await perform("take inbox dead letters") {
            try await pool.withTransaction { connection in
                var taken: [OutboxInboxDeadLetter] = []
                for id in ids {
                    guard let row = try await connection.query("""
                        SELECT id, group_name, topic, partition_no, offset_no, message_key, payload, headers, reason, attempts, failed_at
                        FROM \(names.table("inbox_dead")) WHERE group_name = ? AND id = ? FOR UPDATE
                        """, [.bytes(Array(group.utf8)), .integer(id)]).rows.first else { continue }
                    let letter = Self.inboxDeadLetter(row)
                    try await connection.query("DELETE FROM \(names.table("inbox_dead")) WHERE id = ?", [.integer(id)])
                    try await connection.query("DELETE FROM \(names.table("inbox")) WHERE group_name = ? AND identity = ?",
                                               [.bytes(Array(group.utf8)), .bytes(Array(letter.message.identity.utf8))])
                    taken.append(letter)
                }
                return taken
            }
        }
    }

    public func removeHandled(group: String, before cutoff: Date, limit: Int) async throws -> Int {
        try await perform("remove handled") {
            // DELETE … ORDER BY … LIMIT walks (group_name, handled_at), oldest first.
            try await pool.query("DELETE FROM \(names.table("inbox")) WHERE group_name = ? AND handled_at < ? ORDER BY handled_at LIMIT ?",
                                 [.bytes(Array(group.utf8)), .integer(MySQLTime.microseconds(cutoff)), .int(limit)]).affectedRows
        }
    }

    private static func inboxDeadLetter(_ row: MySQLRow) -> OutboxInboxDeadLetter {
        let message = OutboxInboxMessage(
            partition: OutboxInboxPartition(topic: row[2].string ?? "", partition: Int32(truncatingIfNeeded: row[3].int64 ?? 0)),
            offset: row[4].int64 ?? 0, key: row[5].isNull ? nil : row[5].string, payload: row[6].bytesValue ?? [],
            headers: OutboxHeaderCoding.decodeStored(row[7].bytesValue ?? []).headers)
        return OutboxInboxDeadLetter(id: row[0].int64 ?? 0, group: row[1].string ?? "", message: message, reason: row[8].string ?? "",
                                     attempts: Int(row[9].int64 ?? 0), failedAt: MySQLTime.date(row[10].int64 ?? 0))
    }
}
