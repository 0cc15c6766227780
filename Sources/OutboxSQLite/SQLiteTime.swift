import Foundation
import Outbox

/// Times are stored as integer microseconds since 1970: exact, sortable, and cheap to compare.
enum SQLiteTime {
    static func microseconds(_ date: Date) -> Int64 { OutboxStoreSupport.microseconds(date) }
    static func date(_ microseconds: Int64) -> Date { OutboxStoreSupport.date(microseconds: microseconds) }
}
