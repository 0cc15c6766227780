public import Foundation
public import Outbox

/// The inbox on MongoDB: `<prefix>_inbox` (one document per group and handled message, its `_id`
/// `{g: group, i: identity}` the deduplication), `<prefix>_inbox_dead`, and a counter document in
/// `<prefix>_inbox_meta` numbering the dead letters.
extension MongoOutboxStore: OutboxInboxStore {
    /// The application's handler: it runs in the transaction that records the message; its writes
    /// through the session commit with the record or abort with it. Like every MongoDB
    /// transaction body it may run again after a transient error, so it must do its database work
    /// through the session only.
    public typealias Handler = @Sendable (OutboxInboxMessage, MongoSession) async throws -> Void

    private var inbox: MongoCollection { client.collection("\(configuration.tablePrefix)_inbox", in: messages.database) }
    private var inboxDead: MongoCollection { client.collection("\(configuration.tablePrefix)_inbox_dead", in: messages.database) }
    private var inboxMeta: MongoCollection { client.collection("\(configuration.tablePrefix)_inbox_meta", in: messages.database) }

    public func migrateInbox() async throws {
        try await perform("migrate inbox") {
            // createIndexes also creates the collections, which transactions cannot do on older servers.
            try await inbox.createIndexes([("outbox_inbox_handled", ["g": 1, "handledAt": 1], false)])
            try await inboxDead.createIndexes([("outbox_inbox_dead_group", ["group": 1, "_id": 1], false)])
            try await inboxMeta.createIndexes([("outbox_inbox_meta_name", ["name": 1], false)])
        }
    }

    public func handleOnce(_ message: OutboxInboxMessage, group: String, now: Date, handler: @escaping Handler) async throws -> OutboxInboxOutcome {
        let handlerError = OutboxHandlerErrorBox()
        let record: BSONDocument = ["g": .string(group), "i": .string(message.identity)]
        do {
            return try await performInTransaction("handle") {
                try await client.withTransaction { session in
                    // Two transactions recording the same message: the second meets a write
                    // conflict and runs again, then finds the record.
                    if try await !inbox.find(["_id": .document(record)], limit: 1, session: session).isEmpty { return .duplicate }
                    try await inbox.insertOne(["_id": .document(record), "g": .string(group), "handledAt": .int64(MongoTime.microseconds(now))],
                                              session: session)
                    try await handlerError.run { try await handler(message, session) }
                    return .handled
                }
            }
        } catch {
            throw handlerError.rethrow(error)
        }
    }

    public func deadLetter(_ message: OutboxInboxMessage, group: String, reason: String, attempts: Int, now: Date) async throws {
        let record: BSONDocument = ["g": .string(group), "i": .string(message.identity)]
        try await performInTransaction("dead-letter") {
            try await client.withTransaction { session in
                let counter = try await inboxMeta.findOneAndUpdate(["_id": "deadLetters"], ["$inc": ["next": 1]], upsert: true, session: session)
                let id = counter?["next"]?.int64Value ?? 1
                if try await inbox.find(["_id": .document(record)], limit: 1, session: session).isEmpty {
                    try await inbox.insertOne(["_id": .document(record), "g": .string(group), "handledAt": .int64(MongoTime.microseconds(now))],
                                              session: session)
                }
                try await inboxDead.insertOne([
                    "_id": .int64(id), "group": .string(group), "identity": .string(message.identity),
                    "topic": .string(message.partition.topic), "partition": .int64(Int64(message.partition.partition)), "offset": .int64(message.offset),
                    "key": message.key.map { .string($0) } ?? .null, "payload": .bytes(message.payload),
                    "headers": .bytes(OutboxHeaderCoding.encode(message.headers)), "reason": .string(reason), "attempts": .int64(Int64(attempts)),
                    "failedAt": .int64(MongoTime.microseconds(now)),
                ], session: session)
            }
        }
    }

    public func inboxDeadLetters(group: String, limit: Int, afterID: Int64?) async throws -> [OutboxInboxDeadLetter] {
        try await perform("list inbox dead letters") {
            try await inboxDead.find(["group": .string(group), "_id": ["$gt": .int64(afterID ?? 0)]], sort: ["group": 1, "_id": 1], limit: limit)
                .map(Self.inboxDeadLetter)
        }
    }

    public func takeInboxDeadLetters(group: String, ids: [Int64]) async throws -> [OutboxInboxDeadLetter] {
        guard !ids.isEmpty else { return [] }
        return try await performInTransaction("take inbox dead letters") {
            try await client.withTransaction { session in
                let filter: BSONDocument = ["group": .string(group), "_id": ["$in": .array(ids.map { .int64($0) })]]
                let taken = try await inboxDead.find(filter, sort: ["_id": 1], session: session).map(Self.inboxDeadLetter)
                _ = try await inboxDead.deleteMany(filter, session: session)
                for letter in taken {
                    _ = try await inbox.deleteMany(["_id": .document(["g": .string(group), "i": .string(letter.message.identity)])], session: session)
                }
                return taken
            }
        }
    }

    public func removeHandled(group: String, before cutoff: Date, limit: Int) async throws -> Int {
        try await perform("remove handled") {
            // Bounded: the oldest `limit` ids of the group, then one delete by id.
            let old = try await inbox.find(["g": .string(group), "handledAt": ["$lt": .int64(MongoTime.microseconds(cutoff))]],
                                           sort: ["g": 1, "handledAt": 1], projection: ["_id": 1], limit: limit)
            guard !old.isEmpty else { return 0 }
            return try await inbox.deleteMany(["_id": ["$in": .array(old.compactMap { $0["_id"] })]])
        }
    }

    private static func inboxDeadLetter(_ document: BSONDocument) -> OutboxInboxDeadLetter {
        let message = OutboxInboxMessage(
            partition: OutboxInboxPartition(topic: document["topic"]?.stringValue ?? "",
                                            partition: Int32(truncatingIfNeeded: document["partition"]?.int64Value ?? 0)),
            offset: document["offset"]?.int64Value ?? 0, key: document["key"]?.stringValue, payload: document["payload"]?.binaryValue ?? [],
            headers: OutboxHeaderCoding.decodeStored(document["headers"]?.binaryValue ?? []).headers)
        return OutboxInboxDeadLetter(
            id: document["_id"]?.int64Value ?? 0, group: document["group"]?.stringValue ?? "", message: message,
            reason: document["reason"]?.stringValue ?? "", attempts: Int(document["attempts"]?.int64Value ?? 0),
            failedAt: MongoTime.date(document["failedAt"]?.int64Value ?? 0))
    }
}
