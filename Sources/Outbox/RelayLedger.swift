/// What one relay holds right now: its leases and the messages it has in flight.
///
/// Pure bookkeeping without I/O, so its rules (what may be claimed, what may be released) are easy
/// to read and to test. The relay keeps it behind a mutex.
struct RelayLedger {
    /// Partitions whose lease we hold.
    private(set) var owned: Set<Int> = []
    /// Owned partitions above our fair share: no new claims, released once drained.
    private(set) var surplus: Set<Int> = []
    /// Until when (relay's monotonic clock) the leases are safe to use without another heartbeat.
    private(set) var leaseValidUntil: ContinuousClock.Instant?
    /// Batches being published.
    private(set) var batchesInFlight = 0
    /// Whether graceful shutdown has begun.
    var isStopping = false

    /// Messages being published; the relay's claims leave them out.
    private(set) var sequencesInFlight: Set<Int64> = []
    /// Messages whose batch finished while a claim may have been reading an older snapshot, with
    /// the value of `finishedBatches` when they finished. A claim that started before that moment
    /// can still return them as pending; they must not be published again.
    private var recentlyFinished: [Int64: UInt64] = [:]
    /// Counts finished batches; a claim notes it when it starts.
    private(set) var finishedBatches: UInt64 = 0
    private var keysInFlight: [String: Int] = [:]
    private var partitionsInFlight: [Int: Int] = [:]
    /// Payload bytes of the messages in flight.
    private(set) var bytesInFlight = 0

    var messagesInFlight: Int { sequencesInFlight.count }
    /// Keys with a message in flight.
    var inFlightKeys: Set<String> { Set(keysInFlight.keys) }

    /// Partitions we may claim from at `now`.
    func claimablePartitions(at now: ContinuousClock.Instant) -> [Int] {
        guard !isStopping, let leaseValidUntil, now < leaseValidUntil else { return [] }
        return owned.subtracting(surplus).sorted()
    }

    /// Surplus partitions with nothing in flight: safe to hand to another relay.
    var drainedSurplus: Set<Int> {
        surplus.filter { (partitionsInFlight[$0] ?? 0) == 0 }
    }

    /// Records a heartbeat's answer; returns whether we gained partitions.
    mutating func apply(_ grant: OutboxLeaseGrant, validUntil: ContinuousClock.Instant) -> Bool {
        let gained = !grant.owned.subtracting(owned).isEmpty
        owned = grant.owned
        surplus = grant.surplus
        leaseValidUntil = validUntil
        return gained
    }

    /// Chooses, from freshly claimed records, those that can be published now, and marks them in
    /// flight. A record is held back when it is already in flight, when an earlier message of its
    /// key is in flight (its outcome decides whether this one may go), or when its partition is no
    /// longer claimable.
    ///
    /// `claimStartedAt` is the value of ``finishedBatches`` when the claim started: records of
    /// batches finished since then may be stale copies and are held back too. `keysInFlightAtClaim`
    /// are the keys in flight when the claim started: the store left those messages out of the
    /// claim, and a later message of such a key must wait even if its predecessor's batch has
    /// finished meanwhile (it may have failed and be waiting for a retry the claim did not see).
    mutating func admit(_ records: [OutboxRecord], limit: Int, claimable: Set<Int>, claimStartedAt: UInt64,
                        keysInFlightAtClaim: Set<String>) -> [OutboxRecord] {
        defer {
            // Only one claim runs at a time, so nothing older than this one can be stale any more.
            recentlyFinished = recentlyFinished.filter { $0.value > claimStartedAt }
        }
        var batch: [OutboxRecord] = []
        var blockedKeys = keysInFlightAtClaim
        for record in records where batch.count < limit {
            let key = record.message.key
            let isStale = recentlyFinished[record.sequence].map { $0 > claimStartedAt } ?? false
            if isStale || sequencesInFlight.contains(record.sequence) || !claimable.contains(record.partition) {
                if let key { blockedKeys.insert(key) }
                continue
            }
            if let key, blockedKeys.contains(key) || keysInFlight[key] != nil {
                blockedKeys.insert(key)
                continue
            }
            batch.append(record)
        }
        guard !batch.isEmpty else { return [] }
        batchesInFlight += 1
        for record in batch {
            bytesInFlight += record.message.payload.count
            sequencesInFlight.insert(record.sequence)
            partitionsInFlight[record.partition, default: 0] += 1
            if let key = record.message.key { keysInFlight[key, default: 0] += 1 }
        }
        return batch
    }

    /// Forgets a finished (or abandoned) batch.
    mutating func finish(_ batch: [OutboxRecord]) {
        batchesInFlight -= 1
        finishedBatches += 1
        for record in batch {
            bytesInFlight -= record.message.payload.count
            sequencesInFlight.remove(record.sequence)
            recentlyFinished[record.sequence] = finishedBatches
            partitionsInFlight[record.partition, default: 1] -= 1
            if partitionsInFlight[record.partition] == 0 { partitionsInFlight[record.partition] = nil }
            if let key = record.message.key {
                keysInFlight[key, default: 1] -= 1
                if keysInFlight[key] == 0 { keysInFlight[key] = nil }
            }
        }
    }

    /// Drops all leases (after resigning, or when they can no longer be trusted).
    mutating func dropLeases() {
        owned = []
        surplus = []
        leaseValidUntil = nil
    }
}
