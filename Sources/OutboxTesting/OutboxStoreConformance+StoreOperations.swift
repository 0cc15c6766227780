import Foundation
import Outbox

extension OutboxStoreConformance {
    private func own(_ store: any OutboxStore, as relayID: String, leaseDuration: Duration = .seconds(5)) async throws -> [Int] {
        let grant = try await store.heartbeat(OutboxHeartbeat(relayID: relayID, leaseDuration: leaseDuration))
        try expect(grant.owned.count == grant.partitionCount, "a lone relay should own every partition, owns \(grant.owned.count) of \(grant.partitionCount)")
        return grant.owned.sorted()
    }

    func staleOwnerIsFenced(_ subject: any OutboxStoreUnderTest) async throws {
        let store = subject.store
        let messages = (0..<5).map { OutboxMessage(topic: "orders", key: "k\($0)", text: "m\($0)") }
        try await subject.enqueueCommitted(messages)
        let partitions = try await own(store, as: "stale", leaseDuration: .milliseconds(200))
        let claimed = try await store.claim(partitions: partitions, limit: 10, now: Date())
        try expect(claimed.count == 5, "claim should return the 5 messages, returned \(claimed.count)")
        try await Task.sleep(for: .milliseconds(400))
        let newPartitions = try await own(store, as: "new-owner")
        let references = claimed.map { OutboxMessageReference(sequence: $0.sequence, partition: $0.partition) }
        let stale = try await store.acknowledge(OutboxAcknowledgement(relayID: "stale", delivered: references))
        try expect(stale.fenced == 5 && stale.applied == 0, "a relay whose lease lapsed must be fenced: applied \(stale.applied), fenced \(stale.fenced)")
        let reclaimed = try await store.claim(partitions: newPartitions, limit: 10, now: Date())
        try expect(reclaimed.map(\.message.id) == claimed.map(\.message.id), "the new owner must still see every message")
        let fresh = try await store.acknowledge(OutboxAcknowledgement(relayID: "new-owner", delivered: references))
        try expect(fresh.applied == 5 && fresh.fenced == 0, "the owner's acknowledgement must apply: applied \(fresh.applied)")
        let status = try await store.status(now: Date())
        try expect(status.pending == 0, "acknowledged messages are gone, pending \(status.pending)")
    }

    func claimSkipsKeysWaitingForRetry(_ subject: any OutboxStoreUnderTest) async throws {
        let store = subject.store
        let first = OutboxMessage(topic: "orders", key: "blocked", text: "1")
        let second = OutboxMessage(topic: "orders", key: "blocked", text: "2")
        let other = OutboxMessage(topic: "orders", key: "free", text: "3")
        let keyless = OutboxMessage(topic: "orders", text: "4")
        try await subject.enqueueCommitted([first, second, other, keyless])
        let partitions = try await own(store, as: "relay")
        let claimed = try await store.claim(partitions: partitions, limit: 10, now: Date())
        try expect(claimed.map(\.message.id) == [first.id, second.id, other.id, keyless.id], "claim returns due messages in sequence order")
        let later = Date().addingTimeInterval(60)
        _ = try await store.acknowledge(OutboxAcknowledgement(relayID: "relay", retries: [
            .init(sequence: claimed[0].sequence, partition: claimed[0].partition, availableAt: later, error: "timeout")]))
        let now = try await store.claim(partitions: partitions, limit: 10, now: Date())
        try expect(now.map(\.message.id) == [other.id, keyless.id], "a key waiting for a retry is held back, others are not")
        let afterwards = try await store.claim(partitions: partitions, limit: 10, now: later.addingTimeInterval(1))
        try expect(afterwards.map(\.message.id) == [first.id, second.id, other.id, keyless.id], "once due, the key comes back in order")
        try expect(afterwards[0].attempts == 1 && afterwards[0].lastError == "timeout", "the retry is counted with its error")
        let limited = try await store.claim(partitions: partitions, limit: 2, now: later.addingTimeInterval(1))
        try expect(limited.count == 2, "claim honours its limit")
        let inFlight = [afterwards[0].sequence, afterwards[2].sequence]
        let skipping = try await store.claim(partitions: partitions, limit: 2, now: later.addingTimeInterval(1), excluding: inFlight)
        try expect(skipping.map(\.message.id) == [second.id, keyless.id],
                   "claim leaves out the messages in flight and still fills its limit, returned \(skipping.count) messages")
        let elsewhere = try await store.claim(partitions: [], limit: 10, now: Date())
        try expect(elsewhere.isEmpty, "no partitions, no messages")
    }

    func enqueueRefusesAnIDAlreadyPending(_ subject: any OutboxStoreUnderTest) async throws {
        let store = subject.store
        let first = OutboxMessage(topic: "orders", key: "once", text: "first")
        try await subject.enqueueCommitted([first])
        let hostile = "second '; DROP TABLE orders; --"
        var again = OutboxMessage(topic: "orders", key: "once", text: hostile)
        again.id = first.id
        try await expectIDRefused(subject, [OutboxMessage(topic: "orders", key: "other", text: "with it"), again],
                                  payload: hostile, "an id already pending")
        let twin = OutboxMessage(topic: "orders", key: "twin", text: "twin one")
        var copy = OutboxMessage(topic: "orders", key: "twin-copy", text: hostile)
        copy.id = twin.id
        try await expectIDRefused(subject, [twin, copy], payload: hostile, "one id twice in an enqueue")
        let status = try await store.status(now: Date())
        try expect(status.pending == 1, "a refused enqueue writes nothing: pending \(status.pending), expected 1")
        let partitions = try await own(store, as: "relay")
        let claimed = try await store.claim(partitions: partitions, limit: 10, now: Date())
        try expect(claimed.map(\.message.id) == [first.id] && claimed.first?.message.payload == first.payload,
                   "only the first message is there, as it was written")
    }

    private func expectIDRefused(_ subject: any OutboxStoreUnderTest, _ messages: [OutboxMessage], payload: String, _ what: String) async throws {
        do {
            try await subject.enqueueCommitted(messages)
        } catch let error as OutboxError {
            try expect(error.code == .invalidMessage, "\(what): expected invalidMessage, got \(error.code): \(error.message)")
            try expect(error.message.contains("id"), "\(what): the error should say the id is taken: \(error.message)")
            try expect(!"\(error)".contains(payload), "\(what): the error must not quote the payload: \(error)")
            return
        } catch {
            throw ConformanceFailure("[\(harness.name)] \(what): expected an OutboxError, got \(type(of: error)): \(error)")
        }
        throw ConformanceFailure("[\(harness.name)] \(what): the enqueue was accepted")
    }

    func deadLettersCanBeRetriedAndDiscarded(_ subject: any OutboxStoreUnderTest) async throws {
        let store = subject.store
        let messages = (0..<3).map { OutboxMessage(topic: "orders", key: "d\($0)", text: "dead \($0)") }
        try await subject.enqueueCommitted(messages)
        let partitions = try await own(store, as: "relay")
        let claimed = try await store.claim(partitions: partitions, limit: 10, now: Date())
        _ = try await store.acknowledge(OutboxAcknowledgement(relayID: "relay", deadLetters: claimed.map {
            .init(sequence: $0.sequence, partition: $0.partition, error: "rejected: '; DROP TABLE x; --")
        }))
        let letters = try await store.deadLetters(limit: 10, afterSequence: nil)
        try expect(letters.map(\.record.message.id) == messages.map(\.id), "all three are dead letters, in order")
        try expect(letters.allSatisfy { $0.record.lastError == "rejected: '; DROP TABLE x; --" }, "the reason is kept verbatim")
        let page = try await store.deadLetters(limit: 10, afterSequence: letters[0].record.sequence)
        try expect(page.count == 2, "paging after the first returns the other two")
        let retried = try await store.retryDeadLetters(sequences: [letters[0].record.sequence, 999_999_999], now: Date())
        try expect(retried == 1, "one dead letter retried, got \(retried)")
        let discarded = try await store.discardDeadLetters(sequences: [letters[1].record.sequence])
        try expect(discarded == 1, "one dead letter discarded, got \(discarded)")
        let status = try await store.status(now: Date())
        try expect(status.pending == 1 && status.dead == 1, "pending 1 and dead 1 expected, got \(status.pending) and \(status.dead)")
        let again = try await store.claim(partitions: partitions, limit: 10, now: Date())
        try expect(again.map(\.message.id) == [messages[0].id] && again[0].attempts == 0, "a retried dead letter is pending with zero attempts")
    }

    func messagesLeftBehindAreStillClaimed(_ subject: any OutboxStoreUnderTest) async throws {
        let store = subject.store
        let partitions = try await own(store, as: "relay")
        func messages(_ name: String) -> [OutboxMessage] {
            (0..<6).map { OutboxMessage(topic: "orders", key: "\(name)\($0)", text: "\(name) \($0)") }
        }
        func delivered(_ records: [OutboxRecord]) -> OutboxAcknowledgement {
            OutboxAcknowledgement(relayID: "relay", delivered: records.map { .init(sequence: $0.sequence, partition: $0.partition) })
        }
        func claimAll(now: Date = Date(), excluding: [Int64] = []) async throws -> [OutboxRecord] {
            try await store.claim(partitions: partitions, limit: 100, now: now, excluding: excluding)
        }
        // A message waits for a retry while later ones are drained past it.
        let waiting = OutboxMessage(topic: "orders", key: "waiting", text: "retried")
        try await subject.enqueueCommitted([waiting] + messages("a"))
        let first = try await claimAll()
        try expect(first.count == 7, "seven messages claimed, got \(first.count)")
        let later = Date().addingTimeInterval(60)
        _ = try await store.acknowledge(OutboxAcknowledgement(
            relayID: "relay", delivered: first.dropFirst().map { .init(sequence: $0.sequence, partition: $0.partition) },
            retries: [.init(sequence: first[0].sequence, partition: first[0].partition, availableAt: later, error: "timeout")]))
        try await subject.enqueueCommitted(messages("b"))
        let second = try await claimAll()
        try expect(second.count == 6, "the retry is not due: six messages, got \(second.count)")
        _ = try await store.acknowledge(delivered(second))
        let due = try await claimAll(now: later.addingTimeInterval(1))
        try expect(due.map(\.message.id) == [waiting.id], "the retried message comes back once due, got \(due.count) messages")
        // It dies; later messages are drained; then it is sent back from the dead letters.
        _ = try await store.acknowledge(OutboxAcknowledgement(relayID: "relay", deadLetters: [
            .init(sequence: due[0].sequence, partition: due[0].partition, error: "rejected")]))
        try await subject.enqueueCommitted(messages("c"))
        _ = try await store.acknowledge(delivered(try await claimAll()))
        try await subject.enqueueCommitted(messages("d"))
        _ = try await store.acknowledge(delivered(try await claimAll()))
        try expect(try await store.retryDeadLetters(sequences: [due[0].sequence], now: Date()) == 1, "the dead letter is sent back")
        let sentBack = try await claimAll()
        try expect(sentBack.map(\.message.id) == [waiting.id], "the dead letter sent back is claimed, got \(sentBack.count) messages")
        _ = try await store.acknowledge(delivered(sentBack))
        // A relay claims, then claims more with its first batch in flight, and crashes: whoever
        // claims next (nothing in flight) gets both batches.
        try await subject.enqueueCommitted(messages("e"))
        let inFlight = try await claimAll()
        try await subject.enqueueCommitted(messages("f"))
        let more = try await claimAll(excluding: inFlight.map(\.sequence))
        try expect(more.count == 6, "the second claim leaves the first batch out, got \(more.count)")
        let newer = messages("g")
        try await subject.enqueueCommitted(newer)
        let afterCrash = try await claimAll()
        let expected = (inFlight + more).map(\.message.id) + newer.map(\.id)
        try expect(afterCrash.count == 18 && Set(afterCrash.map(\.message.id)) == Set(expected),
                   "a crashed relay's messages in flight are claimed again with the new ones, got \(afterCrash.count) of 18")
    }

    func deliveredRowsAreRetainedThenRemoved(_ subject: any OutboxStoreUnderTest) async throws {
        let store = subject.store
        let messages = (0..<5).map { OutboxMessage(topic: "orders", key: "r\($0)", text: "kept \($0)") }
        try await subject.enqueueCommitted(messages)
        let partitions = try await own(store, as: "relay")
        let claimed = try await store.claim(partitions: partitions, limit: 10, now: Date())
        _ = try await store.acknowledge(OutboxAcknowledgement(
            relayID: "relay", delivered: claimed.map { .init(sequence: $0.sequence, partition: $0.partition) }, retainDelivered: true))
        var status = try await store.status(now: Date())
        try expect(status.pending == 0 && status.deliveredRetained == 5, "delivered rows are kept, not pending")
        let none = try await store.removeDelivered(finishedBefore: Date().addingTimeInterval(-60), limit: 10)
        try expect(none == 0, "rows younger than the window stay")
        var removed: [Int] = []
        while true {
            let count = try await store.removeDelivered(finishedBefore: Date().addingTimeInterval(60), limit: 2)
            if count == 0 { break }
            removed.append(count)
        }
        try expect(removed == [2, 2, 1], "cleanup removes in bounded passes of 2: \(removed)")
        status = try await store.status(now: Date())
        try expect(status.deliveredRetained == 0, "everything past the window is removed")
    }

    func backlogCountsStopAtTheLimit(_ subject: any OutboxStoreUnderTest) async throws {
        let store = subject.store
        let empty = try await store.backlog(now: Date(), countLimit: 10)
        try expect(empty.pending == 0 && empty.dead == 0 && empty.oldestPendingAge == nil, "an empty store has no backlog, got \(empty)")
        // The first message in commit order is an hour old: the age must come from it.
        let old = OutboxMessage(topic: "orders", key: "b0", type: nil, payload: Array("old".utf8), headers: [],
                                createdAt: Date().addingTimeInterval(-3_600))
        let messages = [old] + (1..<6).map { OutboxMessage(topic: "orders", key: "b\($0)", text: "backlog \($0)") }
        try await subject.enqueueCommitted(messages)
        let partitions = try await own(store, as: "relay")
        let claimed = try await store.claim(partitions: partitions, limit: 10, now: Date())
        try expect(claimed.count == 6, "claim should return the 6 messages, returned \(claimed.count)")
        _ = try await store.acknowledge(OutboxAcknowledgement(
            relayID: "relay",
            retries: [.init(sequence: claimed[1].sequence, partition: claimed[1].partition, availableAt: Date().addingTimeInterval(60), error: "later")],
            deadLetters: claimed[4...5].map { .init(sequence: $0.sequence, partition: $0.partition, error: "rejected") }))
        let full = try await store.backlog(now: Date(), countLimit: 100)
        try expect(full.pending == 4 && full.dead == 2 && !full.pendingIsAtLeast,
                   "4 pending (one waiting for a retry) and 2 dead expected, got \(full.pending) and \(full.dead)")
        let age = full.oldestPendingAge ?? .zero
        try expect(age >= .seconds(3_590) && age <= .seconds(3_700), "the oldest pending message is an hour old, got \(age)")
        let capped = try await store.backlog(now: Date(), countLimit: 3)
        try expect(capped.pending == 3 && capped.pendingIsAtLeast && capped.dead == 2,
                   "counts stop at the limit of 3: pending \(capped.pending), dead \(capped.dead)")
        _ = try await store.acknowledge(OutboxAcknowledgement(relayID: "relay", delivered: [claimed[0]].map { .init(sequence: $0.sequence, partition: $0.partition) }))
        let later = try await store.backlog(now: Date(), countLimit: 100)
        try expect(later.pending == 3 && (later.oldestPendingAge ?? .seconds(3_600)) < .seconds(600),
                   "once the old message is delivered the next one is the oldest, got \(String(describing: later.oldestPendingAge))")
    }

    func statusShowsRelaysAndLeases(_ subject: any OutboxStoreUnderTest) async throws {
        let store = subject.store
        let before = Date()
        let grant = try await store.heartbeat(OutboxHeartbeat(relayID: "relay-a", leaseDuration: .seconds(30), inFlight: 3, now: before,
                                                              instanceID: "run-1", published: 42))
        var status = try await store.status(now: Date())
        try expect(status.relays.count == 1, "one live relay expected, got \(status.relays.count)")
        let relay = status.relays[0]
        try expect(relay.relayID == "relay-a" && relay.inFlight == 3 && relay.published == 42,
                   "the relay's in-flight and published counts are shown, got \(relay.inFlight) and \(relay.published)")
        try expect(Set(relay.partitions) == grant.owned, "the relay's partitions are its grant's")
        try expect(status.leases.count == status.partitionCount && status.leases.map(\.partition) == Array(0..<status.partitionCount),
                   "every partition's lease is listed in order, got \(status.leases.count) of \(status.partitionCount)")
        let owned = status.leases.filter { $0.owner == "relay-a" }
        try expect(owned.count == grant.owned.count, "the leases name their owner")
        try expect(owned.allSatisfy { abs($0.expiresAt.timeIntervalSince(before.addingTimeInterval(30))) < 2 },
                   "a lease expires a lease duration after the heartbeat, got \(owned.first.map { "\($0.expiresAt)" } ?? "none")")
        _ = try await store.heartbeat(OutboxHeartbeat(relayID: "relay-a", leaseDuration: .seconds(30), inFlight: 0, instanceID: "run-1", published: 50))
        status = try await store.status(now: Date())
        try expect(status.relays.first?.published == 50, "the published count follows the heartbeats")
        try await store.resign(relayID: "relay-a")
        status = try await store.status(now: Date())
        try expect(status.relays.isEmpty && status.leases.allSatisfy { $0.owner == nil }, "a resigned relay holds nothing")
    }
}
