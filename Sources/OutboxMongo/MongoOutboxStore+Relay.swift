public import Foundation
public import Outbox

extension MongoOutboxStore {
    public func migrate() async throws {
        try await kit.errors.migrate(partitionCount: configuration.partitionCount) {
            try await client.checkTransactionSupport()
            // Indexes first: createIndexes also creates the collections, which transactions on
            // older servers cannot do.
            try await messages.createIndexes([
                ("outbox_id", ["id": 1], true),
                ("outbox_claim", ["state": 1, "_id": 1], false),
                // The claim's "held back by a retry" read: pending documents with attempts > 0
                // are a short range of this index, however long the backlog. (Outboxes migrated
                // before it have an unused `outbox_held` index; dropping it is safe.)
                ("outbox_retrying", ["state": 1, "attempts": 1, "partition": 1], false),
                ("outbox_finished", ["state": 1, "finishedAt": 1], false),
            ])
            try await leases.createIndexes([("outbox_owner", ["owner": 1], false)])
            try await relays.createIndexes([("outbox_expires", ["expiresAt": 1], false)])
            try await partitions.createIndexes([("outbox_next", ["next": 1], false)])
            // Idempotent: a second migrate, or two at once, change nothing.
            let existing = try await meta.find(["_id": "schema"], limit: 1).first?["partitions"]?.int64Value
            let count = Int(existing ?? Int64(configuration.partitionCount))
            for start in stride(from: 0, to: count, by: 512) {
                let range = start..<min(count, start + 512)
                try await partitions.update(range.map { (["_id": .int64(Int64($0))], ["$setOnInsert": ["next": 0, "writes": 0]], true, false) })
                try await leases.update(range.map { (["_id": .int64(Int64($0))], ["$setOnInsert": ["owner": nil, "expiresAt": 0, "fence": 0]], true, false) })
            }
            try await meta.update([
                (["_id": "heartbeat"], ["$setOnInsert": ["turn": 0]], true, false),
                (["_id": "schema"], ["$setOnInsert": ["version": 1, "partitions": .int64(Int64(count))]], true, false),
            ])
        }
    }

    public func heartbeat(_ request: OutboxHeartbeat) async throws -> OutboxLeaseGrant {
        try await perform("heartbeat") {
            try await client.withTransaction { session in
                // Every heartbeat writes this one document first: two heartbeats in flight
                // conflict, and one runs again, so no two relays plan from the same snapshot.
                try await meta.updateMany(["_id": "heartbeat"], ["$inc": ["turn": 1]], session: session)
                let leaseDocuments = try await leases.find([:], sort: ["_id": 1], session: session)
                let leaseList = leaseDocuments.map { lease in
                    OutboxLeasePlanner.Lease(partition: Int(lease["_id"]?.int64Value ?? 0), owner: lease["owner"]?.stringValue,
                                             expiresAt: MongoTime.date(lease["expiresAt"]?.int64Value ?? 0))
                }
                let registrations = try await relays.find([:], session: session).map { relay in
                    OutboxLeasePlanner.Registration(relayID: relay["_id"]?.stringValue ?? "", expiresAt: MongoTime.date(relay["expiresAt"]?.int64Value ?? 0),
                                                    instanceID: relay["instance"]?.stringValue ?? "")
                }
                let plan = OutboxLeasePlanner.plan(request, leases: leaseList, registrations: registrations)
                try await leases.update(plan.changedLeases.map { lease in
                    (["_id": .int64(Int64(lease.partition))],
                     ["$set": ["owner": lease.owner.map { .string($0) } ?? .null, "expiresAt": .int64(MongoTime.microseconds(lease.expiresAt))]],
                     false, false)
                }, session: session)
                if !plan.grant.relayIDInUse {
                    try await relays.update([(
                        ["_id": .string(request.relayID)],
                        ["$set": ["expiresAt": .int64(MongoTime.microseconds(plan.registration.expiresAt)), "inFlight": .int64(Int64(request.inFlight)),
                                  "instance": .string(plan.registration.instanceID), "published": .int64(Int64(request.published))]],
                        true, false)], session: session)
                }
                if !plan.lapsedRelays.isEmpty {
                    try await relays.deleteMany(["_id": ["$in": .array(plan.lapsedRelays.map { .string($0) })]], session: session)
                }
                return plan.grant
            }
        }
    }

    public func resign(relayID: String) async throws {
        try await perform("resign") {
            try await client.withTransaction { session in
                try await leases.updateMany(["owner": .string(relayID)], ["$set": ["owner": nil, "expiresAt": 0]], session: session)
                try await relays.deleteMany(["_id": .string(relayID)], session: session)
            }
        }
    }

    public func claim(partitions wanted: [Int], limit: Int, maximumBytes: Int, now: Date, excluding: [Int64]) async throws -> [OutboxRecord] {
        guard !wanted.isEmpty, limit > 0 else { return [] }
        // The relay's messages in flight are left out here, not by a `$nin` in the query: the
        // SecantusDB test server scans the collection and checks such a list per document (15 s
        // per claim for 500 ids over 20,000 documents). On mongod a `$nin` on `_id` would be an
        // index-bounds complement and could move into the query.
        let skipped = Set(excluding)
        let partitionList = BSONValue.array(wanted.map { .int64(Int64($0)) })
        let nowValue = BSONValue.int64(MongoTime.microseconds(now))
        return try await perform("claim") {
            // One snapshot for both reads: a message is never seen without the earlier messages
            // of its partition (see "Sequences and commit order").
            try await client.withTransaction { session in
                // Read batch by batch (each at most 16 MB), and no further once the payloads read
                // reach the byte bound; then keep the messages up to the one that reaches it.
                func isWanted(_ document: BSONDocument) -> Bool { document["_id"]?.int64Value.map { !skipped.contains($0) } ?? true }
                var bytesRead = 0
                let read = try await messages.find(
                    ["state": .state(.pending), "partition": ["$in": partitionList], "availableAt": ["$lte": nowValue]],
                    sort: ["_id": 1], limit: limit + skipped.count, session: session,
                    until: { batch in
                        bytesRead += batch.filter(isWanted).reduce(0) { $0 + ($1["payload"]?.binaryValue?.count ?? 0) }
                        return bytesRead >= maximumBytes
                    })
                var candidates: [BSONDocument] = []
                var bytes = 0
                for document in read where isWanted(document) {
                    guard candidates.count < limit, bytes < maximumBytes else { break }
                    candidates.append(document)
                    bytes += document["payload"]?.binaryValue?.count ?? 0
                }
                guard !candidates.isEmpty else { return [] }
                // Messages are flowing (perhaps from another process): probe at full speed again.
                wakeUp.noteActivity()
                // Keys held back by an earlier message waiting for its retry.
                let waiting = try await messages.find(
                    ["state": .state(.pending), "attempts": ["$gt": 0], "availableAt": ["$gt": nowValue], "partition": ["$in": partitionList]],
                    projection: ["partition": 1, "key": 1], session: session)
                var firstWaiting: [String: Int64] = [:]
                for document in waiting {
                    guard let key = document["key"]?.stringValue, let sequence = document["_id"]?.int64Value else { continue }
                    let slot = "\(document["partition"]?.int64Value ?? -1)/\(key)"
                    firstWaiting[slot] = min(firstWaiting[slot] ?? .max, sequence)
                }
                return try candidates.compactMap { document -> OutboxRecord? in
                    let record = try Self.record(document)
                    if let key = record.message.key, let blocker = firstWaiting["\(record.partition)/\(key)"], blocker < record.sequence {
                        return nil
                    }
                    return record
                }
            }
        }
    }

    /// Reads a document leniently (see ``OutboxStoredMessage``): a field that is missing or of
    /// the wrong BSON type is damage, and the document is still returned for dead-lettering.
    static func record(_ document: BSONDocument) throws -> OutboxRecord {
        guard let sequence = document["_id"]?.int64Value else {
            throw OutboxError(code: .schemaMismatch, operation: "claim",
                              message: "An outbox document has no integer _id; the collection was not written by this library.")
        }
        var damage: [String] = []
        func optionalText(_ field: String, _ name: String) -> String? {
            guard let value = document[field], !value.isNull else { return nil }
            guard let text = value.stringValue else {
                damage.append("the \(name) is not a string")
                return nil
            }
            return text
        }
        let id = document["id"]?.binaryValue.flatMap { bytes in
            bytes.count == 16 ? bytes.withUnsafeBytes { UUID(uuid: $0.loadUnaligned(as: uuid_t.self)) } : nil
        }
        let key = optionalText("key", "key"), type = optionalText("type", "type")
        let stored = OutboxStoredMessage(
            sequence: sequence, partition: Int(document["partition"]?.int64Value ?? sequence & (1 << Self.partitionBits - 1)), id: id,
            topic: document["topic"]?.stringValue, key: key, type: type, payload: document["payload"]?.binaryValue,
            headers: document["headers"]?.binaryValue, createdAt: document["createdAt"]?.int64Value.map(MongoTime.date),
            attempts: Int(document["attempts"]?.int64Value ?? 0), lastError: document["lastError"]?.stringValue, damage: damage)
        return stored.record
    }

    public func acknowledge(_ acknowledgement: OutboxAcknowledgement) async throws -> OutboxAcknowledgementResult {
        guard !acknowledgement.isEmpty else { return OutboxAcknowledgementResult(applied: 0, fenced: 0) }
        let touched = Set(acknowledgement.delivered.map(\.partition) + acknowledgement.retries.map(\.partition) + acknowledgement.deadLetters.map(\.partition))
        return try await perform("acknowledge") {
            try await client.withTransaction { session in
                let ownedList: BSONValue = .array(touched.sorted().map { .int64(Int64($0)) })
                let ownedFilter: BSONDocument = ["_id": ["$in": ownedList], "owner": .string(acknowledgement.relayID)]
                let owned = Set(try await leases.find(ownedFilter, projection: ["_id": 1], session: session).compactMap { $0["_id"]?.int64Value.map(Int.init) })
                // Writing the leases we check makes a concurrent heartbeat that takes one of them
                // conflict with this transaction, which then runs again and sees the new owner
                // (fencing); reads alone would not conflict.
                if !owned.isEmpty {
                    try await leases.updateMany(ownedFilter, ["$inc": ["fence": 1]], session: session)
                }
                var applied = 0
                var fenced = 0
                let now = BSONValue.int64(MongoTime.microseconds(acknowledgement.now))
                let delivered = acknowledgement.delivered.filter { owned.contains($0.partition) }.map { BSONValue.int64($0.sequence) }
                fenced += acknowledgement.delivered.count - delivered.count
                if !delivered.isEmpty {
                    let filter: BSONDocument = ["_id": ["$in": .array(delivered)], "state": .state(.pending)]
                    applied += acknowledgement.retainDelivered
                        ? try await messages.updateMany(filter, ["$set": ["state": .state(.delivered), "finishedAt": now]], session: session).matched
                        : try await messages.deleteMany(filter, session: session)
                }
                var statements: [(filter: BSONDocument, update: BSONDocument, upsert: Bool, multi: Bool)] = []
                for retry in acknowledgement.retries {
                    guard owned.contains(retry.partition) else { fenced += 1; continue }
                    statements.append((["_id": .int64(retry.sequence), "state": .state(.pending)],
                                       ["$inc": ["attempts": 1], "$set": ["availableAt": .int64(MongoTime.microseconds(retry.availableAt)), "lastError": .string(retry.error)]],
                                       false, false))
                }
                for dead in acknowledgement.deadLetters {
                    guard owned.contains(dead.partition) else { fenced += 1; continue }
                    statements.append((["_id": .int64(dead.sequence), "state": .state(.pending)],
                                       ["$inc": ["attempts": 1], "$set": ["state": .state(.dead), "lastError": .string(dead.error), "finishedAt": now]],
                                       false, false))
                }
                applied += try await messages.update(statements, session: session).matched
                return OutboxAcknowledgementResult(applied: applied, fenced: fenced)
            }
        }
    }
}
