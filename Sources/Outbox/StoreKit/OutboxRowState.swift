/// The state of a stored message, as every store writes it (a small integer column or field).
///
/// Package access: the stores share it; users see ``OutboxStatus`` counts instead.
package enum OutboxRowState: Int, Sendable, CaseIterable {
    /// Waiting to be published (new, or waiting for a retry when `attempts > 0`).
    case pending = 0
    /// Dead-lettered: failed for good, kept with its last error.
    case dead = 1
    /// Published and kept for the retention period (retention mode only).
    case delivered = 2
}
