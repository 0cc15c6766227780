public import Foundation
public import GRDB
public import Outbox

/// The inbox on SQLite: `<prefix>_inbox` (one row per group and handled message) and
/// `<prefix>_inbox_dead`, created by ``migrateInbox()``.
extension SQLiteOutboxStore: OutboxInboxStore {
    /// The application's handler: it runs inside the write transaction that records the message,
    /// on GRDB's `Database` of that transaction (synchronously, as GRDB transactions are).
    public typealias Handler = @Sendable (OutboxInboxMessage, Database) throws -> Void

    public func migrateInbox() async throws {
        let prefix = configuration.tablePrefix
        try await kit.perform("migrate inbox") { [writer] in
            var migrator = DatabaseMigrator()
            migrator.registerMigration("\(prefix).inbox.v1") { db in
                try db.execute(sql: SQLiteStatements.named("""
                    CREATE TABLE outbox_inbox (
                        group_name TEXT NOT NULL,
                        identity TEXT NOT NULL,
                        handled_at INTEGER NOT NULL,
                        PRIMARY KEY (group_name, identity)
                    ) WITHOUT ROWID;
                    -- Retention passes, oldest first per group.
                    CREATE INDEX outbox_inbox_handled ON outbox_inbox(group_name, handled_at);
                    CREATE TABLE outbox_inbox_dead (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        group_name TEXT NOT NULL,
                        identity TEXT NOT NULL,
                        topic TEXT NOT NULL,
                        partition INTEGER NOT NULL,
                        offset INTEGER NOT NULL,
                        message_key TEXT,
                        payload BLOB NOT NULL,
                        headers BLOB NOT NULL,
                        reason TEXT NOT NULL,
                        attempts INTEGER NOT NULL,
                        failed_at INTEGER NOT NULL
                    );
                    CREATE INDEX outbox_inbox_dead_group ON outbox_inbox_dead(group_name, id);
                    """, prefix: prefix))
            }
            try migrator.migrate(writer)
        }
    }

    /// One message is a batch of one: the same transaction, record and handler.
    public func handleOnce(_ message: OutboxInboxMessage, group: String, now: Date, handler: @escaping Handler) async throws -> OutboxInboxOutcome {
        try await handleBatch([message], group: group, now: now, handler: handler)[0]
    }

    public func handleBatch(_ messages: [OutboxInboxMessage], group: String, now: Date, handler: @escaping Handler) async throws -> [OutboxInboxOutcome] {
        let handlerError = OutboxHandlerErrorBox()
        do {
            return try await write("handle") { db in
                let record = try db.cachedStatement(sql: self.statements.named(
                    "INSERT OR IGNORE INTO outbox_inbox (group_name, identity, handled_at) VALUES (?, ?, ?)"))
                var outcomes: [OutboxInboxOutcome] = []
                for message in messages {
                    try record.execute(arguments: [group, message.identity, SQLiteTime.microseconds(now)])
                    guard db.changesCount == 1 else {
                        outcomes.append(.duplicate)
                        continue
                    }
                    try handlerError.run { try handler(message, db) }
                    outcomes.append(.handled)
                }
                return outcomes
            }
        } catch {
            throw handlerError.rethrow(error)
        }
    }

    public func deadLetter(_ message: OutboxInboxMessage, group: String, reason: String, attempts: Int, now: Date) async throws {
        try await write("dead-letter") { db in
            try db.execute(sql: self.statements.named("INSERT OR IGNORE INTO outbox_inbox (group_name, identity, handled_at) VALUES (?, ?, ?)"),
                           arguments: [group, message.identity, SQLiteTime.microseconds(now)])
            try db.execute(sql: self.statements.named("""
                INSERT INTO outbox_inbox_dead (group_name, identity, topic, partition, offset, message_key, payload, headers, reason, attempts, failed_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """), arguments: [group, message.identity, message.partition.topic, Int64(message.partition.partition), message.offset,
                                  message.key, Data(message.payload), Data(OutboxHeaderCoding.encode(message.headers)), reason, attempts,
                                  SQLiteTime.microseconds(now)])
        }
    }

    public func inboxDeadLetters(group: String, limit: Int, afterID: Int64?) async throws -> [OutboxInboxDeadLetter] {
        try await read("list inbox dead letters") { db in
            try Row.fetchAll(db, sql: self.statements.named("SELECT * FROM outbox_inbox_dead WHERE group_name = ? AND id > ? ORDER BY id LIMIT ?"),
                             arguments: [group, afterID ?? 0, limit]).map(Self.inboxDeadLetter)
        }
    }

    public func takeInboxDeadLetters(group: String, ids: [Int64]) async throws -> [OutboxInboxDeadLetter] {
        guard !ids.isEmpty else { return [] }
        return try await write("take inbox dead letters") { db in
            var taken: [OutboxInboxDeadLetter] = []
            for id in ids {
                guard let row = try Row.fetchOne(db, sql: self.statements.named("SELECT * FROM outbox_inbox_dead WHERE group_name = ? AND id = ?"),
                                                 arguments: [group, id]) else { continue }
                let letter = Self.inboxDeadLetter(row)
                try db.execute(sql: self.statements.named("DELETE FROM outbox_inbox_dead WHERE id = ?"), arguments: [id])
                try db.execute(sql: self.statements.named("DELETE FROM outbox_inbox WHERE group_name = ? AND identity = ?"),
                               arguments: [group, letter.message.identity])
                taken.append(letter)
            }
            return taken
        }
    }

    public func removeHandled(group: String, before cutoff: Date, limit: Int) async throws -> Int {
        try await write("remove handled") { db in
            try db.execute(sql: self.statements.named("""
                DELETE FROM outbox_inbox WHERE group_name = ?1 AND identity IN (
                    SELECT identity FROM outbox_inbox WHERE group_name = ?1 AND handled_at < ?2 ORDER BY handled_at LIMIT ?3)
                """), arguments: [group, SQLiteTime.microseconds(cutoff), limit])
            return db.changesCount
        }
    }

    private static func inboxDeadLetter(_ row: Row) -> OutboxInboxDeadLetter {
        let headers = OutboxHeaderCoding.decodeStored(Array((row["headers"] as Data?) ?? Data())).headers
        let message = OutboxInboxMessage(
            partition: OutboxInboxPartition(topic: row["topic"], partition: Int32(truncatingIfNeeded: row["partition"] as Int64)),
            offset: row["offset"], key: row["message_key"], payload: Array((row["payload"] as Data?) ?? Data()), headers: headers)
        return OutboxInboxDeadLetter(id: row["id"], group: row["group_name"], message: message, reason: row["reason"],
                                     attempts: row["attempts"], failedAt: SQLiteTime.date(row["failed_at"]))
    }
}
