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
    /// For keys whose batch finished lately, the value of `finishedBatches` when their messages
    /// were last all delivered, and when one last failed: a claim that started while the key was
    /// in flight may take its next messages if the key was delivered since, and never failed since.
    private var keyDeliveredAt: [String: UInt64] = [:]
    private var keyFailedAt: [String: UInt64] = [:]
    /// Messages of each key in batches being published.
    private var keysInFlight: [String: Int] = [:]
    private var partitionsInFlight: [Int: Int] = [:]
    /// Payload bytes of the messages in flight (held ones too).
    private(set) var bytesInFlight = 0
    /// Messages a claim returned while an earlier message of their key was in flight, by key, in
    /// sequence order. They wait for that message's outcome: delivered, they are ready to go
    /// without being claimed again; otherwise they are let go (pending in the store, where a retry
    /// holds them back). Without this, a claim made beside a batch in flight threw away every
    /// message of the keys in that batch and claimed them again later: with few keys per relay,
    /// every message was claimed about twice.
    private var parked: [String: [OutboxRecord]] = [:]
    /// Held messages whose key's earlier messages were all delivered: the next batch, in sequence order.
    private var ready: [OutboxRecord] = []
    /// Keys with messages in `ready`, and how many.
    private var readyKeys: [String: Int] = [:]
    /// Parked and ready messages.
    private(set) var heldCount = 0

    /// Messages in flight: in batches being published, or held (parked or ready).
    var messagesInFlight: Int { sequencesInFlight.count }
    /// Keys with a message in flight or held.
    var inFlightKeys: Set<String> { Set(keysInFlight.keys).union(parked.keys).union(readyKeys.keys) }
    /// Whether held messages are ready to be published.
    var hasReady: Bool { !ready.isEmpty }

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
    /// flight. A record is left out when it is already in flight, or when its partition is no
    /// longer claimable. A record whose key has an earlier message in flight or held is parked
    /// behind it (up to `parkLimit` held in all), because that message's outcome decides whether
    /// it may go; beyond the limit it is left out.
    ///
    /// `claimStartedAt` is the value of ``finishedBatches`` when the claim started: records of
    /// batches finished since then may be stale copies and are left out too. `keysInFlightAtClaim`
    /// are the keys in flight when the claim started: the store left those messages out of the
    /// claim, and a later message of such a key may go only when that batch's outcome is known: if
    /// the key is still in flight, it is parked; if its messages were delivered since the claim
    /// started (and none failed), it may go; otherwise (it may have failed and wait for a retry
    /// the claim did not see) it is left out. A key with a record left out has its later records
    /// in the claim left out as well.
    mutating func admit(_ records: [OutboxRecord], limit: Int, claimable: Set<Int>, claimStartedAt: UInt64,
                        keysInFlightAtClaim: Set<String>, parkLimit: Int = 0) -> [OutboxRecord] {
        defer {
            // Only one claim runs at a time, so nothing older than this one can be stale any more.
            recentlyFinished = recentlyFinished.filter { $0.value > claimStartedAt }
            keyDeliveredAt = keyDeliveredAt.filter { $0.value > claimStartedAt }
            keyFailedAt = keyFailedAt.filter { $0.value > claimStartedAt }
        }
        var batch: [OutboxRecord] = []
        var leftOutKeys: Set<String> = []
        for record in records where batch.count < limit {
            let key = record.message.key
            let isStale = recentlyFinished[record.sequence].map { $0 > claimStartedAt } ?? false
            if isStale || sequencesInFlight.contains(record.sequence) || !claimable.contains(record.partition) {
                if let key { leftOutKeys.insert(key) }
                continue
            }
            if let key {
                if leftOutKeys.contains(key) { continue }
                if isHeld(key) {
                    if heldCount < parkLimit {
                        park(record, key: key)
                    } else {
                        leftOutKeys.insert(key)
                    }
                    continue
                }
                let deliveredSinceClaim = (keyDeliveredAt[key] ?? 0) > claimStartedAt && (keyFailedAt[key] ?? 0) <= claimStartedAt
                if keysInFlightAtClaim.contains(key) && !deliveredSinceClaim {
                    leftOutKeys.insert(key)
                    continue
                }
            }
            batch.append(record)
        }
        guard !batch.isEmpty else { return [] }
        launch(batch, counted: false)
        return batch
    }

    /// Takes up to `limit` ready messages, in sequence order, as the next batch. A key's ready
    /// messages go together or wait for the batch that took its earlier ones (never two batches of
    /// one key at once). Ready messages of partitions no longer claimable are let go, with their keys.
    mutating func takeReady(limit: Int, claimable: Set<Int>) -> [OutboxRecord] {
        for record in ready where !claimable.contains(record.partition) {
            if let key = record.message.key { letGo(key) }
        }
        var batch: [OutboxRecord] = []
        var waiting: [OutboxRecord] = []
        var waitingKeys: Set<String> = []
        for record in ready {
            guard let key = record.message.key else { continue }
            if batch.count < limit && keysInFlight[key] == nil && !waitingKeys.contains(key) {
                batch.append(record)
            } else {
                waiting.append(record)
                waitingKeys.insert(key)
            }
        }
        guard !batch.isEmpty else { return [] }
        ready = waiting
        for record in batch { unhold(record) }
        launch(batch, counted: true)
        return batch
    }

    /// Forgets a finished (or abandoned) batch. `delivered` holds the sequences the broker took
    /// and the store recorded: a key whose messages in the batch were all delivered has its
    /// parked messages made ready; any other key's held messages are let go.
    mutating func finish(_ batch: [OutboxRecord], delivered: Set<Int64> = []) {
        batchesInFlight -= 1
        finishedBatches += 1
        var failedKeys: Set<String> = []
        for record in batch {
            forget(record)
            recentlyFinished[record.sequence] = finishedBatches
            if let key = record.message.key {
                keysInFlight[key, default: 1] -= 1
                if keysInFlight[key] == 0 { keysInFlight[key] = nil }
                if !delivered.contains(record.sequence) { failedKeys.insert(key) }
            }
        }
        var madeReady = false
        for key in Set(batch.compactMap(\.message.key)) {
            if failedKeys.contains(key) {
                keyFailedAt[key] = finishedBatches
                letGo(key)
                continue
            }
            keyDeliveredAt[key] = finishedBatches
            // A key's messages share its partition: ours to publish, or all let go.
            if let partition = parked[key]?.first?.partition, !owned.contains(partition) || surplus.contains(partition) {
                letGo(key)
                continue
            }
            guard let waiting = parked.removeValue(forKey: key) else { continue }
            ready += waiting
            readyKeys[key, default: 0] += waiting.count
            madeReady = true
        }
        if madeReady { ready.sort { $0.sequence < $1.sequence } }
    }

    /// Lets go of a key's held messages: they stay pending in the store and are claimed again.
    private mutating func letGo(_ key: String) {
        for record in parked.removeValue(forKey: key) ?? [] {
            heldCount -= 1
            forget(record)
        }
        guard readyKeys[key] != nil else { return }
        var kept: [OutboxRecord] = []
        for record in ready {
            if record.message.key == key {
                unhold(record)
                forget(record)
            } else {
                kept.append(record)
            }
        }
        ready = kept
    }

    /// Whether a key has a message in a batch being published, parked or ready.
    private func isHeld(_ key: String) -> Bool {
        keysInFlight[key] != nil || parked[key] != nil || readyKeys[key] != nil
    }

    private mutating func park(_ record: OutboxRecord, key: String) {
        parked[key, default: []].append(record)
        heldCount += 1
        track(record)
    }

    /// Marks a batch in flight; `counted` when its messages were held (already tracked).
    private mutating func launch(_ batch: [OutboxRecord], counted: Bool) {
        batchesInFlight += 1
        for record in batch {
            if !counted { track(record) }
            if let key = record.message.key { keysInFlight[key, default: 0] += 1 }
        }
    }

    private mutating func track(_ record: OutboxRecord) {
        bytesInFlight += record.message.payload.count
        sequencesInFlight.insert(record.sequence)
        partitionsInFlight[record.partition, default: 0] += 1
    }

    private mutating func forget(_ record: OutboxRecord) {
        bytesInFlight -= record.message.payload.count
        sequencesInFlight.remove(record.sequence)
        partitionsInFlight[record.partition, default: 1] -= 1
        if partitionsInFlight[record.partition] == 0 { partitionsInFlight[record.partition] = nil }
    }

    /// A held message leaves `parked`/`ready` accounting (it is launched or let go).
    private mutating func unhold(_ record: OutboxRecord) {
        heldCount -= 1
        if let key = record.message.key, let count = readyKeys[key] {
            readyKeys[key] = count > 1 ? count - 1 : nil
        }
    }

    /// Drops all leases (after resigning, or when they can no longer be trusted).
    mutating func dropLeases() {
        owned = []
        surplus = []
        leaseValidUntil = nil
    }
}

