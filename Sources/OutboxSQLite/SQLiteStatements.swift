import GRDB

/// The SQLite store's statements, with its table names (`<prefix>_messages`, `<prefix>_leases`,
/// `<prefix>_relays`). Written once with the default prefix `outbox` and renamed at init: the
/// prefix is a validated identifier, the one thing put into SQL text.
struct SQLiteStatements: Sendable {
    let prefix: String
    let claim: String
    let deleteDelivered: String
    let markDelivered: String
    let reschedule: String
    let deadLetter: String
    let deadLetters: String
    let ownedPartitions: String
    let removeDelivered: String
    let insert: String

    init(prefix: String) {
        self.prefix = prefix
        func named(_ text: String) -> String { Self.named(text, prefix: prefix) }
        claim = named(Self.claimTemplate)
        deleteDelivered = named(Self.deleteDeliveredTemplate)
        markDelivered = named(Self.markDeliveredTemplate)
        reschedule = named(Self.rescheduleTemplate)
        deadLetter = named(Self.deadLetterTemplate)
        deadLetters = named(Self.deadLettersTemplate)
        ownedPartitions = named(Self.ownedPartitionsTemplate)
        removeDelivered = named(Self.removeDeliveredTemplate)
        insert = named("""
            INSERT INTO outbox_messages
                (id, topic, message_key, message_type, payload, headers, partition, created_at, available_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            """)
    }

    /// `text` (written with the default names) with this store's table and index names.
    func named(_ text: String) -> String { Self.named(text, prefix: prefix) }

    static func named(_ text: String, prefix: String) -> String {
        prefix == "outbox" ? text : text.replacingOccurrences(of: "outbox_", with: "\(prefix)_")
    }

    /// The claim: pending, due rows of the given partitions in commit order, except the relay's
    /// rows in flight and keys held back by a message waiting for its retry.
    ///
    /// The scan walks pending rows through the partial index `outbox_messages_pending`; the NOT
    /// EXISTS probe only touches rows waiting for a retry, through `outbox_messages_retrying`. Cost
    /// follows the batch size (and the number of rows waiting for a retry), not the backlog.
    static let claimTemplate = """
                SELECT m.sequence, m.id, m.topic, m.message_key, m.message_type, m.payload, m.headers,
                       m.partition, m.created_at, m.attempts, m.last_error
                FROM outbox_messages AS m INDEXED BY outbox_messages_pending
                WHERE m.state = 0 AND m.available_at <= :now
                  AND m.partition IN (SELECT value FROM json_each(:partitions))
                  AND m.sequence NOT IN (SELECT value FROM json_each(:skipped))
                  AND NOT EXISTS (
                      SELECT 1 FROM outbox_messages AS e INDEXED BY outbox_messages_retrying
                      WHERE e.state = 0 AND e.attempts > 0 AND e.partition = m.partition
                        AND e.message_key = m.message_key AND e.sequence < m.sequence AND e.available_at > :now)
                ORDER BY m.sequence
                LIMIT :limit
        """

    static let deleteDeliveredTemplate = "DELETE FROM outbox_messages WHERE sequence = ? AND state = 0"
    static let markDeliveredTemplate = "UPDATE outbox_messages SET state = 2, finished_at = ? WHERE sequence = ? AND state = 0"
    static let rescheduleTemplate = """
        UPDATE outbox_messages SET attempts = attempts + 1, available_at = ?, last_error = ?
        WHERE sequence = ? AND state = 0
        """
    static let deadLetterTemplate = """
        UPDATE outbox_messages SET attempts = attempts + 1, state = 1, last_error = ?, finished_at = ?
        WHERE sequence = ? AND state = 0
        """
    static let deadLettersTemplate = """
        SELECT sequence, id, topic, message_key, message_type, payload, headers, partition, created_at,
               attempts, last_error, finished_at
        FROM outbox_messages WHERE state = 1 AND sequence > ? ORDER BY sequence LIMIT ?
        """
    static let ownedPartitionsTemplate = "SELECT partition FROM outbox_leases WHERE owner = ?"
    static let removeDeliveredTemplate = """
        DELETE FROM outbox_messages WHERE sequence IN (
            SELECT sequence FROM outbox_messages WHERE state = 2 AND finished_at < ? ORDER BY finished_at LIMIT ?)
        """

    /// The relay's hot queries with sample arguments, for plan checks in tests.
    var relayQueries: [(text: String, arguments: StatementArguments)] {
        [
            (claim, ["now": 0, "partitions": "[0,1]", "skipped": "[1,2]", "limit": 10]),
            (deleteDelivered, [1]),
            (markDelivered, [1, 1]),
            (reschedule, [1, "x", 1]),
            (deadLetter, ["x", 1, 1]),
            (ownedPartitions, ["relay"]),
            (removeDelivered, [1, 10]),
            (deadLetters, [0, 10]),
        ]
    }
}
