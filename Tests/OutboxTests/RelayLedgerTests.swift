import Foundation
@testable import Outbox
import Testing

/// The relay's admission rules, one test per rule, on the pure ledger (no store, no clock but the
/// one passed in).
@Suite struct RelayLedgerTests {
    let later = ContinuousClock.now + .seconds(60)

    func record(_ sequence: Int64, key: String?, partition: Int = 0, bytes: Int = 10) -> OutboxRecord {
        OutboxRecord(message: OutboxMessage(topic: "t", key: key, payload: Array(repeating: 0, count: bytes)), sequence: sequence, partition: partition)
    }

    func ledger(owning partitions: Set<Int>, surplus: Set<Int> = []) -> RelayLedger {
        var ledger = RelayLedger()
        _ = ledger.apply(OutboxLeaseGrant(owned: partitions, surplus: surplus, partitionCount: 8, liveRelays: 1), validUntil: later)
        return ledger
    }

    @Test func aMessageAlreadyInFlightIsNotAdmittedTwice() {
        var ledger = ledger(owning: [0])
        let first = ledger.admit([record(1, key: "a")], limit: 10, claimable: [0], claimStartedAt: 0, keysInFlightAtClaim: [])
        let again = ledger.admit([record(1, key: "a")], limit: 10, claimable: [0], claimStartedAt: 0, keysInFlightAtClaim: [])
        #expect(first.count == 1 && again.isEmpty)
    }

    @Test func aKeyWithAMessageInFlightHoldsBackItsLaterMessages() {
        var ledger = ledger(owning: [0])
        _ = ledger.admit([record(1, key: "a")], limit: 10, claimable: [0], claimStartedAt: 0, keysInFlightAtClaim: [])
        let next = ledger.admit([record(2, key: "a"), record(3, key: "b")], limit: 10, claimable: [0], claimStartedAt: 0, keysInFlightAtClaim: [])
        #expect(next.map(\.sequence) == [3])
    }

    @Test func aPartitionNoLongerClaimableHoldsBackItsRecordsAndTheirKeys() {
        var ledger = ledger(owning: [0, 1])
        let batch = ledger.admit([record(1, key: "a", partition: 1), record(2, key: "a", partition: 0), record(3, key: "c", partition: 0)],
                                 limit: 10, claimable: [0], claimStartedAt: 0, keysInFlightAtClaim: [])
        #expect(batch.map(\.sequence) == [3], "the key of a held-back record stays held back in the same claim")
    }

    @Test func recordsOfABatchFinishedSinceTheClaimStartedAreStale() {
        var ledger = ledger(owning: [0])
        let first = ledger.admit([record(1, key: "a")], limit: 10, claimable: [0], claimStartedAt: 0, keysInFlightAtClaim: [])
        let claimStartedAt = ledger.finishedBatches
        ledger.finish(first)
        // A claim that started before the finish can still return the row as pending.
        let stale = ledger.admit([record(1, key: "a"), record(2, key: "a")], limit: 10, claimable: [0],
                                 claimStartedAt: claimStartedAt, keysInFlightAtClaim: [])
        #expect(stale.isEmpty, "the stale copy and the rest of its key are held back")
        let fresh = ledger.admit([record(2, key: "a")], limit: 10, claimable: [0], claimStartedAt: ledger.finishedBatches, keysInFlightAtClaim: [])
        #expect(fresh.map(\.sequence) == [2])
    }

    @Test func keysInFlightWhenTheClaimStartedStayHeldBack() {
        var ledger = ledger(owning: [0])
        let batch = ledger.admit([record(5, key: "a"), record(6, key: "b")], limit: 10, claimable: [0], claimStartedAt: 0, keysInFlightAtClaim: ["a"])
        #expect(batch.map(\.sequence) == [6], "the claim left the in-flight predecessor out; its outcome decides")
    }

    @Test func theLimitIsHonoured() {
        var ledger = ledger(owning: [0])
        let batch = ledger.admit((1...5).map { record($0, key: "k\($0)") }, limit: 3, claimable: [0], claimStartedAt: 0, keysInFlightAtClaim: [])
        #expect(batch.map(\.sequence) == [1, 2, 3])
    }

    @Test func finishingABatchReleasesItsKeysPartitionsAndBytes() {
        var ledger = ledger(owning: [0, 1], surplus: [1])
        let batch = ledger.admit([record(1, key: "a", partition: 1, bytes: 100), record(2, key: "b", partition: 0, bytes: 50)],
                                 limit: 10, claimable: [0, 1], claimStartedAt: 0, keysInFlightAtClaim: [])
        #expect(ledger.bytesInFlight == 150 && ledger.messagesInFlight == 2 && ledger.batchesInFlight == 1)
        #expect(ledger.drainedSurplus.isEmpty, "a surplus partition with a message in flight is not handed over")
        ledger.finish(batch)
        #expect(ledger.bytesInFlight == 0 && ledger.messagesInFlight == 0 && ledger.batchesInFlight == 0 && ledger.inFlightKeys.isEmpty)
        #expect(ledger.drainedSurplus == [1])
    }

    @Test func claimablePartitionsLeaveOutSurplusAndEndWithTheLeaseOrAtShutdown() {
        var ledger = ledger(owning: [0, 1, 2], surplus: [2])
        #expect(ledger.claimablePartitions(at: .now) == [0, 1])
        #expect(ledger.claimablePartitions(at: later + .seconds(1)).isEmpty, "no claims once the leases can no longer be trusted")
        ledger.isStopping = true
        #expect(ledger.claimablePartitions(at: .now).isEmpty)
        ledger.isStopping = false
        ledger.dropLeases()
        #expect(ledger.claimablePartitions(at: .now).isEmpty)
    }

    /// Parking: a later message of a key in flight waits behind it, then goes without a claim.
    @Test func aParkedMessageGoesNextOnceItsKeyWasDelivered() {
        var ledger = ledger(owning: [0])
        let first = ledger.admit([record(1, key: "a")], limit: 10, claimable: [0], claimStartedAt: 0, keysInFlightAtClaim: [])
        let second = ledger.admit([record(2, key: "a"), record(3, key: "b"), record(4, key: "a")], limit: 10, claimable: [0],
                                  claimStartedAt: 0, keysInFlightAtClaim: ["a"], parkLimit: 10)
        #expect(second.map(\.sequence) == [3])
        #expect(ledger.heldCount == 2 && ledger.messagesInFlight == 4, "2 and 4 are parked and left out of claims")
        #expect(ledger.takeReady(limit: 10, claimable: [0]).isEmpty, "nothing is ready while 1 is in flight")
        ledger.finish(first, delivered: [1])
        let next = ledger.takeReady(limit: 10, claimable: [0])
        #expect(next.map(\.sequence) == [2, 4] && ledger.heldCount == 0 && ledger.batchesInFlight == 2)
    }

    @Test func parkedMessagesAreLetGoWhenTheirKeyFailed() {
        var ledger = ledger(owning: [0])
        let first = ledger.admit([record(1, key: "a")], limit: 10, claimable: [0], claimStartedAt: 0, keysInFlightAtClaim: [])
        _ = ledger.admit([record(2, key: "a")], limit: 10, claimable: [0], claimStartedAt: 0, keysInFlightAtClaim: ["a"], parkLimit: 10)
        ledger.finish(first, delivered: [])
        #expect(ledger.takeReady(limit: 10, claimable: [0]).isEmpty, "2 must wait for 1's retry in the store")
        #expect(ledger.heldCount == 0 && ledger.messagesInFlight == 0 && ledger.bytesInFlight == 0 && ledger.inFlightKeys.isEmpty)
    }

    @Test func aKeyNeverHasTwoBatchesInFlight() {
        var ledger = ledger(owning: [0])
        let first = ledger.admit([record(1, key: "a")], limit: 10, claimable: [0], claimStartedAt: 0, keysInFlightAtClaim: [])
        _ = ledger.admit([record(2, key: "a"), record(3, key: "a"), record(4, key: "b")], limit: 10, claimable: [0],
                         claimStartedAt: 0, keysInFlightAtClaim: ["a"], parkLimit: 10)
        ledger.finish(first, delivered: [1])
        let second = ledger.takeReady(limit: 1, claimable: [0])
        #expect(second.map(\.sequence) == [2])
        #expect(ledger.takeReady(limit: 10, claimable: [0]).isEmpty, "3 waits for the batch that took 2")
        let parked = ledger.admit([record(5, key: "a")], limit: 10, claimable: [0], claimStartedAt: ledger.finishedBatches,
                                  keysInFlightAtClaim: ["a"], parkLimit: 10)
        #expect(parked.isEmpty)
        ledger.finish(second, delivered: [2])
        #expect(ledger.takeReady(limit: 10, claimable: [0]).map(\.sequence) == [3, 5])
    }

    @Test func heldMessagesOfAPartitionNoLongerClaimableAreLetGo() {
        var ledger = ledger(owning: [0, 1])
        let first = ledger.admit([record(1, key: "a", partition: 1)], limit: 10, claimable: [0, 1], claimStartedAt: 0, keysInFlightAtClaim: [])
        _ = ledger.admit([record(2, key: "a", partition: 1), record(3, key: "a", partition: 1)], limit: 1, claimable: [0, 1],
                         claimStartedAt: 0, keysInFlightAtClaim: ["a"], parkLimit: 10)
        ledger.finish(first, delivered: [1])
        #expect(ledger.takeReady(limit: 10, claimable: [0]).isEmpty)
        #expect(ledger.heldCount == 0 && ledger.messagesInFlight == 0 && ledger.inFlightKeys.isEmpty, "partition 1 is free to hand over")
    }

    @Test func parkingStopsAtItsLimit() {
        var ledger = ledger(owning: [0])
        _ = ledger.admit([record(1, key: "a"), record(2, key: "b")], limit: 10, claimable: [0], claimStartedAt: 0, keysInFlightAtClaim: [])
        _ = ledger.admit([record(3, key: "a"), record(4, key: "b"), record(5, key: "a")], limit: 10, claimable: [0],
                         claimStartedAt: 0, keysInFlightAtClaim: ["a", "b"], parkLimit: 1)
        #expect(ledger.heldCount == 1 && ledger.messagesInFlight == 3, "only 3 is parked; 4 and 5 are left to a later claim")
    }
}
