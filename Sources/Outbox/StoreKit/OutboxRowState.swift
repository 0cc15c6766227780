/// The state of a stored message, as every store writes it (a small integer column or field).
///
/// Package access: the stores share it; users see ``OutboxStatus`` counts instead. The SQL
/// stores spell the raw values as literals in their statement text (`WHERE state = 0`): their
/// partial indexes (`… WHERE state = 0`) serve a query only when its predicate matches the
/// index's own, which a bound parameter would not.
package enum OutboxRowState: Int, Sendable {
    /// Waiting to be published (new, or waiting for a retry when `attempts > 0`).
    case pending = 0
    /// Dead-lettered: failed for good, kept with its last error.
    case dead = 1
    /// Published and kept for the retention period (retention mode only).
    case delivered = 2
}
