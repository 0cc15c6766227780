package import Foundation

/// What a store reads for ``OutboxStore/status(now:)``, assembled into an ``OutboxStatus`` the
/// same way by every store: counts by state, the lease table's owners, the live relays.
package struct OutboxStatusParts: Sendable {
    package var pending = 0
    package var retrying = 0
    package var dead = 0
    package var delivered = 0
    /// When the oldest pending message was created.
    package var oldestPending: Date?
    /// Every partition's owner (`nil`: free), one entry per partition.
    package var owners: [(partition: Int, owner: String?, expiresAt: Date)] = []
    /// Relays whose registration has not lapsed.
    package var relays: [(relayID: String, expiresAt: Date, inFlight: Int, published: Int)] = []

    package init() {}

    /// The status as of `now`.
    package func status(now: Date) -> OutboxStatus {
        var partitionsByOwner: [String: [Int]] = [:]
        for lease in owners.sorted(by: { $0.partition < $1.partition }) {
            if let owner = lease.owner { partitionsByOwner[owner, default: []].append(lease.partition) }
        }
        let live = relays.sorted { $0.relayID < $1.relayID }.map {
            OutboxRelayInfo(relayID: $0.relayID, partitions: partitionsByOwner[$0.relayID] ?? [], inFlight: $0.inFlight,
                            expiresAt: $0.expiresAt, published: $0.published)
        }
        return OutboxStatus(
            pending: pending, retrying: retrying, inFlight: live.reduce(0) { $0 + $1.inFlight },
            dead: dead, deliveredRetained: delivered,
            oldestPendingAge: OutboxBacklog.age(of: oldestPending, now: now),
            partitionCount: owners.count, relays: live,
            leases: owners.sorted { $0.partition < $1.partition }.map { OutboxPartitionLease(partition: $0.partition, owner: $0.owner, expiresAt: $0.expiresAt) })
    }
}
