public import Foundation

/// The partition-lease rules every store applies inside its heartbeat transaction.
///
/// Keeping the rules here, as a pure function over a snapshot, means every store shares them and
/// one set of unit tests covers them; a store only reads the snapshot and writes the changed rows
/// atomically.
///
/// - Live relays are those whose registration has not expired. Sorted by id, relay *i* of *n* has a
///   fair share of `partitionCount / n`, plus one for the first `partitionCount % n`.
/// - A relay renews every lease it still owns (even an expired one nobody else took).
/// - It takes free or expired partitions, lowest first, up to its share.
/// - Partitions above its share are reported as surplus: the relay stops claiming them and releases
///   them at a later heartbeat, once nothing of theirs is in flight. That hand-over keeps per-key
///   order: the next owner starts only after the old one has finished.
/// - One relay id, one live relay: a heartbeat that finds its id registered, unexpired, by another
///   run (another instance) changes nothing and is granted nothing (``OutboxLeaseGrant/relayIDInUse``)
///   until that registration lapses. So two relays started with the same id never share leases,
///   and a relay restarted under the id of a crashed one takes over within one lease duration.
public enum OutboxLeasePlanner {
    /// A partition lease as stored (the same type `OutboxStatus` lists).
    public typealias Lease = OutboxPartitionLease

    /// A relay registration as stored.
    public struct Registration: Sendable, Hashable {
        /// The relay's id.
        public var relayID: String
        /// When the registration lapses unless renewed.
        public var expiresAt: Date
        /// The run of the relay that holds the registration (``OutboxHeartbeat/instanceID``).
        public var instanceID: String

        /// Creates a registration row.
        public init(relayID: String, expiresAt: Date, instanceID: String = "") {
            self.relayID = relayID
            self.expiresAt = expiresAt
            self.instanceID = instanceID
        }
    }

    /// What the store must write, and what it answers.
    public struct Plan: Sendable, Hashable {
        /// Lease rows whose owner or expiry changed.
        public var changedLeases: [Lease]
        /// The heartbeating relay's new registration.
        public var registration: Registration
        /// Registrations that lapsed and can be deleted.
        public var lapsedRelays: [String]
        /// The answer for the relay.
        public var grant: OutboxLeaseGrant
    }

    /// Applies the rules to a snapshot of all leases and registrations.
    public static func plan(_ heartbeat: OutboxHeartbeat, leases: [Lease], registrations: [Registration]) -> Plan {
        let now = heartbeat.now
        let expiry = now.addingTimeInterval(heartbeat.leaseDuration.timeInterval)
        let me = heartbeat.relayID
        let others = registrations.filter { $0.relayID != me && $0.expiresAt > now }.map(\.relayID)
        if let holder = registrations.first(where: { $0.relayID == me }), holder.expiresAt > now, holder.instanceID != heartbeat.instanceID {
            // Another run holds this id: touch nothing, take nothing, until its registration lapses.
            var grant = OutboxLeaseGrant(owned: [], surplus: [], partitionCount: leases.count, liveRelays: others.count + 1)
            grant.relayIDInUse = true
            return Plan(changedLeases: [], registration: holder, lapsedRelays: [], grant: grant)
        }
        let lapsed = registrations.filter { $0.relayID != me && $0.expiresAt <= now }.map(\.relayID)
        let share = fairShare(of: me, others: others, partitionCount: leases.count)

        var changed: [Lease] = []
        var owned: [Int] = []
        var free: [Lease] = []
        for lease in leases.sorted(by: { $0.partition < $1.partition }) {
            if lease.owner == me {
                if heartbeat.releasing.contains(lease.partition) {
                    changed.append(Lease(partition: lease.partition, owner: nil, expiresAt: now))
                } else {
                    changed.append(Lease(partition: lease.partition, owner: me, expiresAt: expiry))
                    owned.append(lease.partition)
                }
            } else if lease.owner == nil || lease.expiresAt <= now {
                free.append(lease)
            }
        }
        // Partitions released in this very heartbeat are not taken back at once.
        free.removeAll { heartbeat.releasing.contains($0.partition) }
        for lease in free.prefix(max(0, share - owned.count)) {
            changed.append(Lease(partition: lease.partition, owner: me, expiresAt: expiry))
            owned.append(lease.partition)
        }
        return Plan(
            changedLeases: changed,
            registration: Registration(relayID: me, expiresAt: expiry, instanceID: heartbeat.instanceID),
            lapsedRelays: lapsed,
            grant: grant(owned: owned, share: share, partitionCount: leases.count, liveRelays: others.count + 1)
        )
    }

    /// The grant ``plan(_:leases:registrations:)`` would answer when it would change nothing but
    /// the expiry of the relay's own leases and registration, or `nil` when it would change more.
    ///
    /// For stores that renew in one cheap statement and read these counts beside it (PostgreSQL),
    /// running the full, serialised heartbeat only when this answers `nil`. `owned` are the
    /// partitions the relay still holds (just renewed), `otherLiveRelays` the ids of the other
    /// unexpired registrations, `lapsedRelays` how many registrations expired, and
    /// `freePartitions` how many leases nobody else holds (no owner, or expired).
    public static func grantIfNothingChanges(
        relayID: String, owned: Set<Int>, otherLiveRelays: [String], lapsedRelays: Int, freePartitions: Int, partitionCount: Int
    ) -> OutboxLeaseGrant? {
        let share = fairShare(of: relayID, others: otherLiveRelays, partitionCount: partitionCount)
        // A lapsed registration is deleted, and a free partition taken while below the share.
        if lapsedRelays > 0 || (freePartitions > 0 && owned.count < share) { return nil }
        return grant(owned: Array(owned), share: share, partitionCount: partitionCount, liveRelays: otherLiveRelays.count + 1)
    }

    /// Relay *i* of the live relays sorted by id gets `partitionCount / n`, plus one for the first
    /// `partitionCount % n`.
    private static func fairShare(of relayID: String, others: [String], partitionCount: Int) -> Int {
        let live = (others + [relayID]).sorted()
        let index = live.firstIndex(of: relayID)!
        return partitionCount / live.count + (index < partitionCount % live.count ? 1 : 0)
    }

    /// Partitions above the share are surplus: the highest ones.
    private static func grant(owned: [Int], share: Int, partitionCount: Int, liveRelays: Int) -> OutboxLeaseGrant {
        let surplus = owned.count > share ? Set(owned.sorted().suffix(owned.count - share)) : []
        return OutboxLeaseGrant(owned: Set(owned), surplus: surplus, partitionCount: partitionCount, liveRelays: liveRelays)
    }
}

extension Duration {
    /// The duration in seconds, as Foundation wants it.
    public var timeInterval: TimeInterval {
        let (seconds, attoseconds) = components
        return TimeInterval(seconds) + TimeInterval(attoseconds) / 1e18
    }
}
