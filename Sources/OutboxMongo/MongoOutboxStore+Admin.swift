public import Foundation
public import Outbox

extension MongoOutboxStore {
    public func removeDelivered(finishedBefore cutoff: Date, limit: Int) async throws -> Int {
        try await perform("remove delivered") {
            let old = try await messages.find(["state": 2, "finishedAt": ["$lt": .int64(MongoTime.microseconds(cutoff))]],
                                              sort: ["state": 1, "finishedAt": 1], projection: ["_id": 1], limit: limit)
            guard !old.isEmpty else { return 0 }
            return try await messages.deleteMany(["_id": ["$in": .array(old.compactMap { $0["_id"] })], "state": 2])
        }
    }

    public func status(now: Date) async throws -> OutboxStatus {
        try await perform("status") {
            let counts = try await messages.aggregate([
                ["$group": [
                    "_id": nil,
                    "pending": ["$sum": ["$cond": [["$eq": ["$state", 0]], 1, 0]]],
                    "retrying": ["$sum": ["$cond": [["$and": [["$eq": ["$state", 0]], ["$gt": ["$attempts", 0]]]], 1, 0]]],
                    "dead": ["$sum": ["$cond": [["$eq": ["$state", 1]], 1, 0]]],
                    "delivered": ["$sum": ["$cond": [["$eq": ["$state", 2]], 1, 0]]],
                ]],
            ]).first ?? [:]
            let oldest = try await messages.find(["state": 0], sort: ["state": 1, "_id": 1], projection: ["createdAt": 1], limit: 1)
                .first?["createdAt"]?.int64Value.map(MongoTime.date)
            let leaseDocuments = try await leases.find([:], sort: ["_id": 1])
            var owners: [String: [Int]] = [:]
            for lease in leaseDocuments {
                if let owner = lease["owner"]?.stringValue { owners[owner, default: []].append(Int(lease["_id"]?.int64Value ?? 0)) }
            }
            let relayInfos = try await relays.find(["expiresAt": ["$gt": .int64(MongoTime.microseconds(now))]], sort: ["_id": 1]).map { relay in
                let relayID = relay["_id"]?.stringValue ?? ""
                return OutboxRelayInfo(relayID: relayID, partitions: owners[relayID] ?? [], inFlight: Int(relay["inFlight"]?.int64Value ?? 0),
                                       expiresAt: MongoTime.date(relay["expiresAt"]?.int64Value ?? 0))
            }
            func count(_ name: String) -> Int { Int(counts[name]?.int64Value ?? 0) }
            return OutboxStatus(
                pending: count("pending"), retrying: count("retrying"), inFlight: relayInfos.reduce(0) { $0 + $1.inFlight },
                dead: count("dead"), deliveredRetained: count("delivered"),
                oldestPendingAge: oldest.map { .milliseconds(Int64(max(0, now.timeIntervalSince($0)) * 1000)) },
                partitionCount: leaseDocuments.count, relays: relayInfos)
        }
    }

    public func deadLetters(limit: Int, afterSequence: Int64?) async throws -> [OutboxDeadLetter] {
        try await perform("list dead letters") {
            try await messages.find(["state": 1, "_id": ["$gt": .int64(afterSequence ?? 0)]], sort: ["state": 1, "_id": 1], limit: limit).map { document in
                OutboxDeadLetter(record: try Self.record(document),
                                 failedAt: MongoTime.date(document["finishedAt"]?.int64Value ?? document["createdAt"]?.int64Value ?? 0))
            }
        }
    }

    public func retryDeadLetters(sequences: [Int64], now: Date) async throws -> Int {
        guard !sequences.isEmpty else { return 0 }
        let count = try await perform("retry dead letters") {
            try await messages.updateMany(
                ["_id": ["$in": .array(sequences.map { .int64($0) })], "state": 1],
                ["$set": ["state": 0, "attempts": 0, "availableAt": .int64(OutboxStoreSupport.dueAtOnceMicroseconds), "finishedAt": nil]]).matched
        }
        if count > 0 {
            poller.noteActivity()
            commits.signal()
        }
        return count
    }

    public func discardDeadLetters(sequences: [Int64]) async throws -> Int {
        guard !sequences.isEmpty else { return 0 }
        return try await perform("discard dead letters") {
            try await messages.deleteMany(["_id": ["$in": .array(sequences.map { .int64($0) })], "state": 1])
        }
    }
}
