public import Foundation

/// Checks, from the consumer's side, what arrived against what was committed: loss, duplicates and
/// per-key order.
///
/// Order is judged on first deliveries, since duplicates are allowed (they are replays after a
/// crash): for each key, the first delivery of every message must come after the first delivery of
/// every message committed before it with the same key.
public struct DeliveryAudit: Sendable, CustomStringConvertible {
    /// Messages committed.
    public private(set) var committed = 0
    /// Distinct committed messages that arrived.
    public private(set) var delivered = 0
    /// Committed messages that never arrived.
    public private(set) var missing: [UUID] = []
    /// Deliveries beyond the first of a message.
    public private(set) var duplicates = 0
    /// Deliveries of ids nobody committed.
    public private(set) var unexpected = 0
    /// First deliveries that came after a later message of the same key had arrived. A message
    /// whose predecessor never arrived is loss (the predecessor is missing), not an order violation.
    public private(set) var orderViolations = 0

    /// Audits deliveries (`id`, in arrival order) against the committed messages of each key in commit order.
    ///
    /// - Parameters:
    ///   - committedByKey: for each ordering key, the ids in commit order. Keyless messages go under `nil`
    ///     and are only checked for loss and duplicates.
    ///   - deliveredIDs: every delivery, in arrival order, duplicates included.
    ///   - deadLettered: ids that were dead-lettered, so they are expected to be missing; a
    ///     delivery of one counts as unexpected.
    public init(committedByKey: [String?: [UUID]], deliveredIDs: [UUID], deadLettered: Set<UUID> = []) {
        var position: [UUID: (key: String?, index: Int)] = [:]
        for (key, ids) in committedByKey {
            for (index, id) in ids.filter({ !deadLettered.contains($0) }).enumerated() { position[id] = (key, index) }
        }
        committed = position.count
        var seen: Set<UUID> = []
        var nextIndex: [String: Int] = [:]
        for id in deliveredIDs {
            guard let (key, index) = position[id] else {
                unexpected += 1
                continue
            }
            guard seen.insert(id).inserted else {
                duplicates += 1
                continue
            }
            if let key {
                // `expected` is one past the latest message of the key that arrived: anything
                // below it arrives late. Above it, the messages between are missing (or late).
                let expected = nextIndex[key, default: 0]
                if index < expected { orderViolations += 1 }
                nextIndex[key] = max(expected, index + 1)
            }
        }
        delivered = seen.count
        missing = position.keys.filter { !seen.contains($0) }
    }

    /// Whether nothing was lost, nothing unexpected arrived and no key was out of order.
    public var isClean: Bool { missing.isEmpty && unexpected == 0 && orderViolations == 0 }

    public var description: String {
        "committed=\(committed) delivered=\(delivered) lost=\(missing.count) duplicates=\(duplicates) unexpected=\(unexpected) order_violations=\(orderViolations)"
    }
}
