/// One collection, for the application's own documents and the outbox's.
///
/// Each method is one database command; pass the transaction's ``MongoSession`` to run it inside
/// the transaction. Filters and updates are ordinary MongoDB query and update documents, built
/// as values — never as strings.
public struct MongoCollection: Sendable {
    let client: MongoClient
    /// The database name.
    public let database: String
    /// The collection name.
    public let name: String

    /// Inserts one document.
    public func insertOne(_ document: BSONDocument, session: MongoSession? = nil) async throws {
        try await insertMany([document], session: session)
    }

    /// Inserts documents in order; stops at the first failure.
    public func insertMany(_ documents: [BSONDocument], session: MongoSession? = nil) async throws {
        guard !documents.isEmpty else { return }
        try await client.runCommand(["insert": .string(name), "documents": .array(documents.map { .document($0) }), "ordered": true],
                                    database: database, session: session)
    }

    /// The documents matching `filter`, in `sort` order, at most `limit` (0 = no limit).
    ///
    /// Follows the cursor to its end: mongod's first batch holds at most 101 documents (and any
    /// batch at most 16 MB), so a single batch would silently cut a read short.
    public func find(
        _ filter: BSONDocument = [:], sort: BSONDocument? = nil, projection: BSONDocument? = nil, limit: Int = 0, session: MongoSession? = nil
    ) async throws -> [BSONDocument] {
        try await find(filter, sort: sort, projection: projection, limit: limit, session: session, until: { _ in false })
    }

    /// Like ``find(_:sort:projection:limit:session:)``, but stops reading after the batch for which
    /// `until` (called with each batch as it arrives) answers true, and closes the cursor.
    func find(
        _ filter: BSONDocument, sort: BSONDocument?, projection: BSONDocument? = nil, limit: Int, session: MongoSession?,
        until: ([BSONDocument]) -> Bool
    ) async throws -> [BSONDocument] {
        var command: BSONDocument = ["find": .string(name), "filter": .document(filter)]
        if let sort { command["sort"] = .document(sort) }
        if let projection { command["projection"] = .document(projection) }
        if limit > 0 { command["limit"] = .int64(Int64(limit)) }
        if let batchSize = client.configuration.batchSize ?? (limit > 0 ? limit : nil) {
            command["batchSize"] = .int64(Int64(batchSize))
        }
        return try await readCursor(client.runCommand(command, database: database, session: session), session: session, until: until)
    }

    /// The first batch of a cursor reply and every batch after it (`getMore`, in the same session),
    /// up to the batch for which `until` answers true; a cursor left open then is killed.
    private func readCursor(_ reply: BSONDocument, session: MongoSession?, until: ([BSONDocument]) -> Bool = { _ in false }) async throws -> [BSONDocument] {
        var cursor = reply["cursor"]?.documentValue ?? [:]
        var batch = cursor["firstBatch"]?.arrayValue?.compactMap(\.documentValue) ?? []
        var documents = batch
        while let id = cursor["id"]?.int64Value, id != 0 {
            if until(batch) {
                _ = try? await client.runCommand(["killCursors": .string(name), "cursors": [.int64(id)]], database: database, session: session)
                break
            }
            var getMore: BSONDocument = ["getMore": .int64(id), "collection": .string(name)]
            if let batchSize = client.configuration.batchSize { getMore["batchSize"] = .int64(Int64(batchSize)) }
            cursor = try await client.runCommand(getMore, database: database, session: session)["cursor"]?.documentValue ?? [:]
            batch = cursor["nextBatch"]?.arrayValue?.compactMap(\.documentValue) ?? []
            documents += batch
        }
        return documents
    }

    /// Applies `update` to every document matching `filter` (or inserts one with `upsert`).
    /// Returns how many documents matched and how many changed.
    @discardableResult
    public func updateMany(_ filter: BSONDocument, _ update: BSONDocument, upsert: Bool = false, session: MongoSession? = nil) async throws -> (matched: Int, modified: Int) {
        try await self.update([(filter, update, upsert, true)], session: session)
    }

    /// Runs several update statements in one command (one round trip).
    @discardableResult
    public func update(_ statements: [(filter: BSONDocument, update: BSONDocument, upsert: Bool, multi: Bool)], session: MongoSession? = nil) async throws -> (matched: Int, modified: Int) {
        guard !statements.isEmpty else { return (0, 0) }
        let updates: [BSONValue] = statements.map { statement in
            ["q": .document(statement.filter), "u": .document(statement.update), "upsert": .bool(statement.upsert), "multi": .bool(statement.multi)]
        }
        let reply = try await client.runCommand(["update": .string(name), "updates": .array(updates), "ordered": true], database: database, session: session)
        let upserted = reply["upserted"]?.arrayValue?.count ?? 0
        return (Int(reply["n"]?.int64Value ?? 0) - upserted, Int(reply["nModified"]?.int64Value ?? 0))
    }

    /// Deletes every document matching `filter`; returns how many.
    @discardableResult
    public func deleteMany(_ filter: BSONDocument, session: MongoSession? = nil) async throws -> Int {
        let reply = try await client.runCommand(
            ["delete": .string(name), "deletes": [["q": .document(filter), "limit": .int32(0)]], "ordered": true], database: database, session: session)
        return Int(reply["n"]?.int64Value ?? 0)
    }

    /// Atomically updates the first document matching `filter` and returns it (after the update
    /// with `returnNew`), or `nil` when none matched and `upsert` is false.
    public func findOneAndUpdate(
        _ filter: BSONDocument, _ update: BSONDocument, sort: BSONDocument? = nil, upsert: Bool = false, returnNew: Bool = true, session: MongoSession? = nil
    ) async throws -> BSONDocument? {
        var command: BSONDocument = ["findAndModify": .string(name), "query": .document(filter), "update": .document(update),
                                     "new": .bool(returnNew), "upsert": .bool(upsert)]
        if let sort { command["sort"] = .document(sort) }
        let reply = try await client.runCommand(command, database: database, session: session)
        return reply["value"]?.documentValue
    }

    /// Creates indexes (`key` documents with their names); existing identical indexes are kept.
    public func createIndexes(_ indexes: [(name: String, key: BSONDocument, unique: Bool)]) async throws {
        let specs: [BSONValue] = indexes.map { ["name": .string($0.name), "key": .document($0.key), "unique": .bool($0.unique)] }
        try await client.runCommand(["createIndexes": .string(name), "indexes": .array(specs)], database: database)
    }

    /// Runs an aggregation pipeline and returns all its results, following the cursor.
    public func aggregate(_ pipeline: [BSONDocument], session: MongoSession? = nil) async throws -> [BSONDocument] {
        let cursor: BSONDocument = client.configuration.batchSize.map { ["batchSize": .int64(Int64($0))] } ?? [:]
        let reply = try await client.runCommand(
            ["aggregate": .string(name), "pipeline": .array(pipeline.map { .document($0) }), "cursor": .document(cursor)],
            database: database, session: session)
        return try await readCursor(reply, session: session)
    }
}
