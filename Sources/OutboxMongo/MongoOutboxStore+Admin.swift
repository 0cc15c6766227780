public import Foundation
public import Outbox

extension MongoOutboxStore {
    public func removeDelivered(finishedBefore cutoff: Date, limit: Int) async throws -> Int {
        try await perform("remove delivered") {
            let old = try await messages.find(["state": .state(.delivered), "finishedAt": ["$lt": .int64(MongoTime.microseconds(cutoff))]],
                                              sort: ["state": 1, "finishedAt": 1], projection: ["_id": 1], limit: limit)
            guard !old.isEmpty else { return 0 }
            return try await messages.deleteMany(["_id": ["$in": .array(old.compactMap { $0["_id"] })], "state": .state(.delivered)])
        }
    }

    public func status(now: Date) async throws -> OutboxStatus {
        try await perform("status") {
            let counts = try await messages.aggregate([
                ["$group": [
                    "_id": nil,
                    "pending": ["$sum": ["$cond": [["$eq": ["$state", .state(.pending)]], 1, 0]]],
                    "retrying": ["$sum": ["$cond": [["$and": [["$eq": ["$state", .state(.pending)]], ["$gt": ["$attempts", 0]]]], 1, 0]]],
                    "dead": ["$sum": ["$cond": [["$eq": ["$state", .state(.dead)]], 1, 0]]],
                    "delivered": ["$sum": ["$cond": [["$eq": ["$state", .state(.delivered)]], 1, 0]]],
                ]],
            ]).first ?? [:]
            func count(_ name: String) -> Int { Int(counts[name]?.int64Value ?? 0) }
            var parts = OutboxStatusParts()
            (parts.pending, parts.retrying, parts.dead, parts.delivered) = (count("pending"), count("retrying"), count("dead"), count("delivered"))
            parts.oldestPending = try await messages.find(["state": .state(.pending)], sort: ["state": 1, "_id": 1], projection: ["createdAt": 1], limit: 1)
                .first?["createdAt"]?.int64Value.map(MongoTime.date)
            parts.owners = try await leases.find([:]).map {
                (Int($0["_id"]?.int64Value ?? 0), $0["owner"]?.stringValue, MongoTime.date($0["expiresAt"]?.int64Value ?? 0))
            }
            parts.relays = try await relays.find(["expiresAt": ["$gt": .int64(MongoTime.microseconds(now))]]).map {
                ($0["_id"]?.stringValue ?? "", MongoTime.date($0["expiresAt"]?.int64Value ?? 0), Int($0["inFlight"]?.int64Value ?? 0),
                 Int($0["published"]?.int64Value ?? 0))
            }
            return parts.status(now: now)
        }
    }

    public func backlog(now: Date, countLimit: Int) async throws -> OutboxBacklog {
        try await perform("backlog") {
            // Each part walks the (state, _id) index: at most `countLimit` entries, or one probe.
            func count(_ state: OutboxRowState) async throws -> Int {
                let counted = try await messages.aggregate([
                    ["$match": ["state": .state(state)]], ["$limit": .int64(Int64(countLimit))], ["$count": "n"],
                ]).first
                return Int(counted?["n"]?.int64Value ?? 0)
            }
            let oldest = try await messages.find(["state": .state(.pending)], sort: ["state": 1, "_id": 1], projection: ["createdAt": 1], limit: 1)
                .first?["createdAt"]?.int64Value.map(MongoTime.date)
            return OutboxBacklog(pending: try await count(.pending), dead: try await count(.dead), countLimit: countLimit,
                                 oldestPendingAge: OutboxBacklog.age(of: oldest, now: now))
        }
    }

    public func deadLetters(limit: Int, afterSequence: Int64?) async throws -> [OutboxDeadLetter] {
        try await perform("list dead letters") {
            try await messages.find(["state": .state(.dead), "_id": ["$gt": .int64(afterSequence ?? 0)]], sort: ["state": 1, "_id": 1], limit: limit).map { document in
                OutboxDeadLetter(record: try Self.record(document),
                                 failedAt: MongoTime.date(document["finishedAt"]?.int64Value ?? document["createdAt"]?.int64Value ?? 0))
            }
        }
    }

    public func retryDeadLetters(sequences: [Int64], now: Date) async throws -> Int {
        guard !sequences.isEmpty else { return 0 }
        let count = try await perform("retry dead letters") {
            try await messages.updateMany(
                ["_id": ["$in": .array(sequences.map { .int64($0) })], "state": .state(.dead)],
                ["$set": ["state": .state(.pending), "attempts": 0, "availableAt": .int64(OutboxStoreSupport.dueAtOnceMicroseconds), "finishedAt": nil]]).matched
        }
        if count > 0 {
            wakeUp.noteActivity()
            wakeUp.committed()
        }
        return count
    }

    public func discardDeadLetters(sequences: [Int64]) async throws -> Int {
        guard !sequences.isEmpty else { return 0 }
        return try await perform("discard dead letters") {
            try await messages.deleteMany(["_id": ["$in": .array(sequences.map { .int64($0) })], "state": .state(.dead)])
        }
    }
}
