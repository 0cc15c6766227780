/// The statements that move messages between the messages table, which holds only pending
/// messages, and `<prefix>_finished`, which holds dead letters (`state` 1) and retained
/// deliveries (`state` 2) with their sequences (schema version 8).
///
/// Why two tables: the messages table's every insert and delete maintained two indexes over
/// `state` that only the few finished rows needed, and InnoDB purged every drained row from them.
/// Without them a claim walks the primary key from its partitions' claim floors.
///
/// A move is an `INSERT … SELECT` and a `DELETE` in the caller's transaction; the `DELETE`'s count
/// is the number moved. At READ COMMITTED the copy reads without locks, which is safe because only
/// the partition's lease owner (fenced in the same transaction) finishes a pending message and
/// only the dead-letter commands send one back.
///
/// `<prefix>_finished` is keyed by sequence and id: a `TRUNCATE` of the messages table starts
/// sequences again at 1, and a message finished after it must not collide with a finished row of
/// before (that acknowledgement would fail at every attempt).
enum MySQLFinishedMessages {
    /// The columns a move copies as they are, in the order of ``columns``.
    static let messageColumns = "sequence, id, topic, message_key, message_type, payload, headers, partition_no, created_at, available_at"

    /// Every column of either table (the messages table keeps `state` and `finished_at`), in the
    /// order the moves write them.
    static let columns = messageColumns + ", attempts, last_error, state, finished_at"

    /// Copies pending messages into `<prefix>_finished` as `state` (1 dead letter, 2 delivered).
    /// Placeholders: for a dead letter the error, then the time finished, then `selection`'s.
    /// A dead letter counts its last attempt.
    static func finishSQL(_ names: MySQLOutboxNames, deadLetter: Bool, selection: String) -> String {
        let attempts = deadLetter ? "attempts + 1" : "attempts"
        let lastError = deadLetter ? "?" : "last_error"
        return """
            INSERT INTO \(names.finished) (\(columns))
            SELECT \(messageColumns), \(attempts), \(lastError), \(deadLetter ? 1 : 2), ?
            FROM \(names.messages) WHERE \(selection) AND state = 0
            """
    }

    /// Deletes the pending messages `selection` names (after ``finishSQL(_:deadLetter:selection:)``).
    static func deletePendingSQL(_ names: MySQLOutboxNames, selection: String) -> String {
        "DELETE FROM \(names.messages) WHERE \(selection) AND state = 0"
    }

    /// Copies dead letters back into the messages table as pending, due at once, with their
    /// attempts reset and their sequences kept. Placeholders: the due time, then `selection`'s.
    static func restoreSQL(_ names: MySQLOutboxNames, selection: String) -> String {
        """
            INSERT INTO \(names.messages) (\(columns))
            SELECT sequence, id, topic, message_key, message_type, payload, headers, partition_no, created_at, ?, 0, last_error, 0, NULL
            FROM \(names.finished) WHERE \(selection) AND state = 1
            """
    }

    /// Deletes the dead letters `selection` names.
    static func deleteDeadSQL(_ names: MySQLOutboxNames, selection: String) -> String {
        "DELETE FROM \(names.finished) WHERE \(selection) AND state = 1"
    }
}
