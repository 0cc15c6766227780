import Foundation
import Outbox

/// The validated, quoted names of the outbox's tables in the connection's database.
///
/// Identifiers cannot be bound as parameters, so they are the one thing interpolated into SQL:
/// the prefix is checked against `[A-Za-z_][A-Za-z0-9_]*` (at most 40 characters) and every table
/// name is backquoted.
struct MySQLOutboxNames: Sendable {
    let messages: String
    /// The messages table's name unquoted, as `information_schema` lists it.
    let messagesTableName: String
    let leases: String
    let relays: String
    /// The relays table's name unquoted, as `information_schema` lists it.
    let relaysTableName: String
    let migrations: String
    /// One row per partition; enqueueing transactions hold them shared, claims take them exclusively.
    let commitGuard: String
    /// The `GET_LOCK` name that serialises migrations of this prefix.
    let migrationLock: String

    init(tablePrefix: String) throws {
        guard OutboxStoreSupport.isValidIdentifier(tablePrefix) else {
            throw OutboxError(code: .invalidConfiguration, operation: "configure MySQL store",
                              message: "The table prefix '\(tablePrefix)' is not a valid name; use letters, digits and underscores (at most 40, not starting with a digit).")
        }
        func quoted(_ table: String) -> String { "`\(tablePrefix)_\(table)`" }
        messages = quoted("messages")
        messagesTableName = "\(tablePrefix)_messages"
        leases = quoted("leases")
        relays = quoted("relays")
        relaysTableName = "\(tablePrefix)_relays"
        migrations = quoted("migrations")
        commitGuard = quoted("commit_guard")
        migrationLock = "outbox.migrate.\(tablePrefix)"
    }
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
