import Foundation
import Outbox
import Testing

@Suite struct LeasePlannerTests {
    let now = Date(timeIntervalSince1970: 1_000_000)

    func leases(_ owners: [String?], expiresAt: Date? = nil) -> [OutboxLeasePlanner.Lease] {
        owners.enumerated().map { .init(partition: $0.offset, owner: $0.element, expiresAt: expiresAt ?? now.addingTimeInterval(5)) }
    }

    @Test func aLoneRelayTakesEveryFreePartition() {
        let plan = OutboxLeasePlanner.plan(
            OutboxHeartbeat(relayID: "a", leaseDuration: .seconds(10), now: now),
            leases: leases(Array(repeating: nil, count: 8)), registrations: [])
        #expect(plan.grant.owned == Set(0..<8))
        #expect(plan.grant.surplus.isEmpty)
        #expect(plan.changedLeases.allSatisfy { $0.owner == "a" && $0.expiresAt == now.addingTimeInterval(10) })
    }

    @Test func aSecondRunWithTheSameIDIsGrantedNothingWhileTheFirstIsLive() {
        let registrations = [OutboxLeasePlanner.Registration(relayID: "a", expiresAt: now.addingTimeInterval(5), instanceID: "first")]
        let plan = OutboxLeasePlanner.plan(
            OutboxHeartbeat(relayID: "a", leaseDuration: .seconds(10), now: now, instanceID: "second"),
            leases: leases(Array(repeating: "a", count: 8)), registrations: registrations)
        #expect(plan.grant.relayIDInUse)
        #expect(plan.grant.owned.isEmpty && plan.changedLeases.isEmpty, "the first run's leases are neither taken nor renewed")
        #expect(plan.registration == registrations[0], "the first run's registration stays as it is")
    }

    @Test func aRestartUnderACrashedRelaysIDTakesOverOnceItsRegistrationLapsed() {
        let lapsed = [OutboxLeasePlanner.Registration(relayID: "a", expiresAt: now, instanceID: "crashed")]
        let plan = OutboxLeasePlanner.plan(
            OutboxHeartbeat(relayID: "a", leaseDuration: .seconds(10), now: now, instanceID: "restarted"),
            leases: leases(Array(repeating: "a", count: 8), expiresAt: now), registrations: lapsed)
        #expect(!plan.grant.relayIDInUse)
        #expect(plan.grant.owned == Set(0..<8))
        #expect(plan.registration.instanceID == "restarted")
        let same = OutboxLeasePlanner.plan(
            OutboxHeartbeat(relayID: "a", leaseDuration: .seconds(10), now: now, instanceID: "restarted"),
            leases: leases(Array(repeating: "a", count: 8)), registrations: [plan.registration])
        #expect(!same.grant.relayIDInUse && same.grant.owned == Set(0..<8), "the holder's own next heartbeat renews")
    }

    @Test func aJoiningRelayMakesTheOwnerGiveUpItsSurplus() {
        let registrations = [OutboxLeasePlanner.Registration(relayID: "b", expiresAt: now.addingTimeInterval(5))]
        let plan = OutboxLeasePlanner.plan(
            OutboxHeartbeat(relayID: "a", leaseDuration: .seconds(10), now: now),
            leases: leases(Array(repeating: "a", count: 8)), registrations: registrations)
        #expect(plan.grant.owned == Set(0..<8), "surplus stays owned until drained")
        #expect(plan.grant.surplus == Set(4..<8))
        #expect(plan.grant.liveRelays == 2)
    }

    @Test func releasedPartitionsGoToTheRelayWithRoom() {
        var current = leases(Array(repeating: "a", count: 8))
        let registrations = [OutboxLeasePlanner.Registration(relayID: "a", expiresAt: now.addingTimeInterval(5)),
                             OutboxLeasePlanner.Registration(relayID: "b", expiresAt: now.addingTimeInterval(5))]
        let release = OutboxLeasePlanner.plan(
            OutboxHeartbeat(relayID: "a", leaseDuration: .seconds(10), releasing: Set(4..<8), now: now),
            leases: current, registrations: registrations)
        #expect(release.grant.owned == Set(0..<4))
        for lease in release.changedLeases { current[lease.partition] = lease }
        let take = OutboxLeasePlanner.plan(
            OutboxHeartbeat(relayID: "b", leaseDuration: .seconds(10), now: now),
            leases: current, registrations: registrations)
        #expect(take.grant.owned == Set(4..<8))
    }

    @Test func expiredLeasesOfADeadRelayAreTakenOver() {
        let expired = leases(Array(repeating: "dead", count: 4), expiresAt: now.addingTimeInterval(-1))
        let plan = OutboxLeasePlanner.plan(
            OutboxHeartbeat(relayID: "b", leaseDuration: .seconds(10), now: now),
            leases: expired,
            registrations: [.init(relayID: "dead", expiresAt: now.addingTimeInterval(-1))])
        #expect(plan.grant.owned == Set(0..<4))
        #expect(plan.lapsedRelays == ["dead"])
    }

    @Test func liveLeasesOfAnotherRelayAreNeverTaken() {
        let plan = OutboxLeasePlanner.plan(
            OutboxHeartbeat(relayID: "b", leaseDuration: .seconds(10), now: now),
            leases: leases(Array(repeating: "a", count: 4)),
            registrations: [.init(relayID: "a", expiresAt: now.addingTimeInterval(5))])
        #expect(plan.grant.owned.isEmpty)
    }

    @Test func sharesDifferByAtMostOne() {
        for relays in 1...7 {
            let ids = (0..<relays).map { "r\($0)" }
            let registrations = ids.map { OutboxLeasePlanner.Registration(relayID: $0, expiresAt: now.addingTimeInterval(5)) }
            var current = leases(Array(repeating: nil, count: 16))
            for id in ids {
                let plan = OutboxLeasePlanner.plan(OutboxHeartbeat(relayID: id, leaseDuration: .seconds(10), now: now),
                                                   leases: current, registrations: registrations)
                for lease in plan.changedLeases { current[lease.partition] = lease }
            }
            let counts = ids.map { id in current.filter { $0.owner == id }.count }
            #expect(counts.reduce(0, +) == 16)
            #expect(counts.max()! - counts.min()! <= 1, "relays \(relays): \(counts)")
        }
    }

    /// The one-statement heartbeat's shortcut answers exactly what the full plan would, and
    /// declines whenever the plan would take a partition or delete a registration.
    @Test func theShortcutAgreesWithThePlan() {
        let heartbeat = OutboxHeartbeat(relayID: "b", leaseDuration: .seconds(10), now: now)
        let live = OutboxLeasePlanner.Registration(relayID: "a", expiresAt: now.addingTimeInterval(5))
        let lapsed = OutboxLeasePlanner.Registration(relayID: "z", expiresAt: now.addingTimeInterval(-1))
        let cases: [(leases: [OutboxLeasePlanner.Lease], registrations: [OutboxLeasePlanner.Registration], changesMore: Bool)] = [
            (leases(["a", "a", "a", "a", "b", "b", "b", "b"]), [live], false),        // settled
            (leases(["a", "a", "a", "a", "a", "a", "b", "b"]), [live], false),        // below share, nothing free
            (leases(["b", "b", "b", "b", "b", "b", "b", "b"]), [live], false),        // surplus to hand over
            (leases(["a", "a", "a", "a", nil, "b", "b", "b"]), [live], true),         // a free partition to take
            (leases(["a", "a", "a", "a", "b", "b", "b", "b"]), [live, lapsed], true), // a registration to delete
        ]
        for (leases, registrations, changesMore) in cases {
            let plan = OutboxLeasePlanner.plan(heartbeat, leases: leases, registrations: registrations)
            let owned = Set(leases.filter { $0.owner == "b" }.map(\.partition))
            let free = leases.filter { $0.owner != "b" && ($0.owner == nil || $0.expiresAt <= now) }.count
            let others = registrations.filter { $0.expiresAt > now }.map(\.relayID)
            let shortcut = OutboxLeasePlanner.grantIfNothingChanges(
                relayID: "b", owned: owned, otherLiveRelays: others, lapsedRelays: registrations.count - others.count,
                freePartitions: free, partitionCount: leases.count)
            #expect(changesMore ? shortcut == nil : shortcut == plan.grant, "\(leases.map(\.owner))")
        }
    }
}

