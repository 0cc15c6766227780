import Foundation
import Outbox

/// The outbox's tables in the connection's database, backquoted (see ``OutboxTableNames``).
typealias MySQLOutboxNames = OutboxTableNames

extension OutboxTableNames {
    /// The names for `tablePrefix`, validated.
    static func mysql(tablePrefix: String) throws -> OutboxTableNames {
        try OutboxTableNames(store: "MySQL", prefix: tablePrefix) { "`\($0)`" }
    }

    /// One row per partition; enqueueing transactions hold them shared, claims take them exclusively.
    var commitGuard: String { table("commit_guard") }
    /// One row per pending message waiting for a retry (schema version 7): what holds back the
    /// rest of its key, and its partition's claim floor.
    var waiting: String { table("waiting") }
    /// Dead letters and retained deliveries (schema version 8), with their sequences: the messages
    /// table holds only pending messages.
    var finished: String { table("finished") }
    /// The `GET_LOCK` name that serialises migrations of this prefix.
    var migrationLock: String { "outbox.migrate.\(prefix)" }
    /// The messages table's name unquoted, as `information_schema` lists it.
    var messagesTableName: String { unquoted("messages") }
    /// The commit-guard table's name unquoted, as `information_schema` lists it.
    var commitGuardTableName: String { unquoted("commit_guard") }
    /// The relays table's name unquoted, as `information_schema` lists it.
    var relaysTableName: String { unquoted("relays") }
}

/// Lists of values as `IN (?, ?, …)` placeholders.
///
/// Each list length would be a different statement text, and so a different prepared statement:
/// lists are padded to the next power of two by repeating their last value, so a handful of
/// statements serve every length.
enum MySQLValueList {
    static func paddedCount(_ count: Int) -> Int {
        var size = 1
        while size < count { size *= 2 }
        return size
    }

    /// `(?, ?, …)` for `count` values after padding.
    static func placeholders(_ count: Int) -> String {
        "(" + Array(repeating: "?", count: paddedCount(count)).joined(separator: ", ") + ")"
    }

    /// The values in slices of at most 1,024, so that long lists (a large batch's sequences) stay
    /// a few prepared shapes.
    static func slices(_ values: [MySQLValue]) -> [[MySQLValue]] {
        stride(from: 0, to: values.count, by: 1024).map { Array(values[$0..<min(values.count, $0 + 1024)]) }
    }

    /// The values, padded like ``placeholders(_:)``. `values` must not be empty.
    static func padded(_ values: [MySQLValue]) -> [MySQLValue] {
        values + Array(repeating: values[values.count - 1], count: paddedCount(values.count) - values.count)
    }
}

/// Times are stored as integer microseconds since 1970 (``OutboxStoreSupport``).
enum MySQLTime {
    static func microseconds(_ date: Date) -> Int64 { OutboxStoreSupport.microseconds(date) }
    static func date(_ microseconds: Int64) -> Date { OutboxStoreSupport.date(microseconds: microseconds) }
}
