import CMongoC
import Foundation
import Outbox
import Synchronization

/// Initialises libmongoc once per process (Swift runs a global's initialiser exactly once).
private let driverInitialized: Bool = {
    mongoc_init()
    // libmongoc writes its own log lines (server monitoring, aborted transactions) to stderr,
    // with hosts in them. Everything that matters reaches the caller as an error instead.
    mongoc_log_set_handler(nil, nil)
    return true
}()

/// A client for one MongoDB deployment, over libmongoc's thread-safe client pool.
///
/// Every blocking driver call runs on one of the client's dedicated threads (as many as
/// ``MongoConfiguration/maximumConnections``), never on Swift's cooperative pool. Documents are
/// ``BSONDocument``s, encoded and decoded in Swift.
///
/// ```swift
/// let client = try MongoClient(configuration: MongoConfiguration(url: "mongodb://db:27017/shop?replicaSet=rs0"))
/// try await client.withTransaction { session in
///     try await client.collection("orders").insertOne(["_id": .string(orderID), "total": 4200], session: session)
///     try await store.enqueue([message], in: session)
/// }
/// ```
public final class MongoClient: Sendable {
    /// Where the client connects.
    public let configuration: MongoConfiguration
    let driver: MongoDriver
    private let workers: [OutboxBlockingWorker]
    private let nextWorker = Atomic<Int>(0)
    /// Free pooled clients: taken before any call pops one, so no worker thread ever waits inside
    /// the pool (see ``MongoClientSlots``).
    let slots: MongoClientSlots

    /// Creates the client; nothing connects until the first command.
    ///
    /// - Throws: ``OutboxError`` with code `.invalidConfiguration` when libmongoc rejects the URL
    ///   or its options (the sentence never repeats the password).
    public init(configuration: MongoConfiguration) throws {
        self.configuration = configuration
        driver = try MongoDriver(configuration: configuration)
        slots = MongoClientSlots(count: driver.poolSize)
        workers = (0..<configuration.maximumConnections).map { _ in OutboxBlockingWorker(name: "outbox.mongo") }
    }

    deinit {
        for worker in workers { worker.stop() }
    }

    /// The named collection of the URL's database (or of `database`).
    public func collection(_ name: String, in database: String? = nil) -> MongoCollection {
        MongoCollection(client: self, database: database ?? configuration.database, name: name)
    }

    /// Runs one database command and returns the server's reply.
    ///
    /// - Throws: ``MongoError`` for a failed command, and for a reply with `writeErrors` or a
    ///   `writeConcernError` (which MongoDB reports with `ok: 1`).
    @discardableResult
    public func runCommand(_ command: BSONDocument, database: String? = nil, session: MongoSession? = nil) async throws -> BSONDocument {
        let bytes = try command.encoded()
        let database = database ?? configuration.database
        let operation = command.fields.first?.name ?? "command"
        if let session {
            return try await session.worker.run { [driver] in
                try driver.command(client: session.client.pointer, database: database, command: bytes, session: session.handle.pointer, operation: operation)
            }
        }
        await slots.acquire()
        defer { slots.release() }
        return try await worker().run { [driver] in
            try driver.withPooledClient { client in
                try driver.command(client: client, database: database, command: bytes, session: nil, operation: operation)
            }
        }
    }

    /// Runs `body` in a multi-document transaction (snapshot reads, majority writes) and commits.
    ///
    /// Like the official drivers' `withTransaction`, the whole body runs again when the server
    /// labels an error `TransientTransactionError` (a write conflict with another transaction, a
    /// failover), for up to `retryTimeout`; so `body` must only do database work through `session`.
    /// A body that throws anything else aborts the transaction and rethrows.
    ///
    /// - Throws: ``MongoError``; code 20 or 263 when the server cannot run transactions (a
    ///   standalone server: run it as a replica set, even a single-node one).
    public func withTransaction<T: Sendable>(
        retryTimeout: Duration = .seconds(120), callerIsolation: isolated (any Actor)? = #isolation,
        _ body: (MongoSession) async throws -> T
    ) async throws -> T {
        let deadline = ContinuousClock.now + retryTimeout
        var attempt = 0
        while true {
            attempt += 1
            let session = try await startSession()
            do {
                let result = try await body(session)
                try await session.commit(until: deadline)
                await session.end()
                session.runCommitHooks()
                return result
            } catch let error as MongoError where error.isTransientTransactionError && ContinuousClock.now < deadline {
                await session.abortAndEnd()
                // Back off a little, with jitter, so conflicting writers stop colliding.
                try await Task.sleep(for: .microseconds(Int64.random(in: 0...(1000 * Int64(min(attempt, 50))))))
            } catch {
                await session.abortAndEnd()
                throw error
            }
        }
    }

    /// Connects (if needed) and checks that the deployment can run transactions.
    ///
    /// - Throws: ``MongoError`` when no server answers; ``OutboxError`` `.invalidConfiguration` for
    ///   a standalone server, which cannot run multi-document transactions.
    public func checkTransactionSupport() async throws {
        let hello = try await runCommand(["hello": 1], database: "admin")
        guard Self.supportsTransactions(hello: hello) else {
            throw OutboxError(code: .invalidConfiguration, operation: "connect",
                              message: "The MongoDB server is a standalone server, which cannot run transactions; run it as a replica set (a single-node one will do) and add replicaSet=<name> to the URL.")
        }
    }

    /// Whether a `hello` reply describes a replica-set member or a mongos.
    static func supportsTransactions(hello: BSONDocument) -> Bool {
        hello["setName"]?.stringValue != nil || hello["msg"]?.stringValue == "isdbgrid"
    }

    /// Starts a transaction on a pooled client; the session gives the client's slot back when it ends.
    private func startSession() async throws -> MongoSession {
        await slots.acquire()
        let worker = worker()
        do {
            let (client, handle) = try await worker.run { [driver] in try driver.startTransaction() }
            return MongoSession(driver: driver, worker: worker, client: client, handle: handle, slots: slots)
        } catch {
            slots.release()
            throw error
        }
    }

    func worker() -> OutboxBlockingWorker {
        workers[nextWorker.wrappingAdd(1, ordering: .relaxed).oldValue % workers.count]
    }
}

/// A C pointer that only the client's worker threads dereference, one at a time.
struct MongoPointer: @unchecked Sendable {
    let pointer: OpaquePointer
}

/// libmongoc's URI and client pool, and the blocking calls made on them.
final class MongoDriver: @unchecked Sendable {
    private let uri: OpaquePointer
    private let pool: OpaquePointer
    /// How many clients the pool hands out at most (the URL's `maxPoolSize`, default 100).
    let poolSize: Int

    init(configuration: MongoConfiguration) throws {
        _ = driverInitialized
        var error = bson_error_t()
        guard let uri = mongoc_uri_new_with_error(configuration.connectionString, &error) else {
            throw OutboxError(code: .invalidConfiguration, operation: "parse MongoDB URL",
                              message: "libmongoc rejected the MongoDB URL; check its host list and options.")
        }
        let tls = configuration.tls
        if tls.enabled { mongoc_uri_set_option_as_bool(uri, MONGOC_URI_TLS, true) }
        if let file = tls.certificateAuthorityFile { mongoc_uri_set_option_as_utf8(uri, MONGOC_URI_TLSCAFILE, file) }
        if let file = tls.certificateKeyFile { mongoc_uri_set_option_as_utf8(uri, MONGOC_URI_TLSCERTIFICATEKEYFILE, file) }
        if tls.allowInvalidCertificates { mongoc_uri_set_option_as_bool(uri, MONGOC_URI_TLSALLOWINVALIDCERTIFICATES, true) }
        if !mongoc_uri_has_option(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS) {
            // Fail a command after 10 s without a server instead of libmongoc's 30 s.
            mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 10_000)
        }
        guard let pool = mongoc_client_pool_new_with_error(uri, &error) else {
            mongoc_uri_destroy(uri)
            throw OutboxError(code: .invalidConfiguration, operation: "configure MongoDB",
                              message: "libmongoc could not create a client for the MongoDB URL; check its TLS options and files.")
        }
        mongoc_client_pool_set_error_api(pool, 2)
        // The pool's size, fixed here so that ``MongoClientSlots`` counts the same clients.
        poolSize = Int(max(1, mongoc_uri_get_option_as_int32(uri, MONGOC_URI_MAXPOOLSIZE, 100)))
        mongoc_client_pool_max_size(pool, UInt32(poolSize))
        _ = mongoc_client_pool_set_appname(pool, "swift-outbox")
        self.uri = uri
        self.pool = pool
    }

    deinit {
        mongoc_client_pool_destroy(pool)
        mongoc_uri_destroy(uri)
    }

    func withPooledClient<T>(_ body: (OpaquePointer) throws -> T) throws -> T {
        let client = mongoc_client_pool_pop(pool)!
        defer { mongoc_client_pool_push(pool, client) }
        return try body(client)
    }

    func popClient() -> OpaquePointer { mongoc_client_pool_pop(pool)! }
    func pushClient(_ client: OpaquePointer) { mongoc_client_pool_push(pool, client) }

    /// Pops a client and starts a session with a transaction on it.
    func startTransaction() throws -> (MongoPointer, MongoPointer) {
        let client = popClient()
        var error = bson_error_t()
        guard let session = mongoc_client_start_session(client, nil, &error) else {
            pushClient(client)
            throw Self.error(error, reply: nil, operation: "start session")
        }
        guard outbox_mongoc_start_transaction(session, &error) else {
            mongoc_client_session_destroy(session)
            pushClient(client)
            throw Self.error(error, reply: nil, operation: "start transaction")
        }
        return (MongoPointer(pointer: client), MongoPointer(pointer: session))
    }

    func command(client: OpaquePointer, database: String, command: [UInt8], session: OpaquePointer?, operation: String) throws -> BSONDocument {
        guard let reply = outbox_bson_new_reply() else { throw MongoError.usage("Out of memory.", operation: operation) }
        defer { outbox_bson_free(reply) }
        var error = bson_error_t()
        let ok = command.withUnsafeBufferPointer { bytes in
            outbox_mongoc_command(client, database, bytes.baseAddress, bytes.count, nil, 0, session, reply, &error)
        }
        let document = Self.document(reply)
        guard ok else { throw Self.error(error, reply: document, operation: operation) }
        if let first = document?["writeErrors"]?.arrayValue?.first?.documentValue {
            throw MongoError(domain: 11, code: Int(first["code"]?.int64Value ?? 0), message: first["errmsg"]?.stringValue ?? "write error",
                             labels: Self.labels(document), operation: operation)
        }
        if let concern = document?["writeConcernError"]?.documentValue {
            throw MongoError(domain: 11, code: Int(concern["code"]?.int64Value ?? 0), message: concern["errmsg"]?.stringValue ?? "write concern error",
                             labels: Self.labels(document), operation: operation)
        }
        return document ?? [:]
    }

    func commit(session: OpaquePointer) throws {
        guard let reply = outbox_bson_new_reply() else { throw MongoError.usage("Out of memory.", operation: "commit") }
        defer { outbox_bson_free(reply) }
        var error = bson_error_t()
        if !outbox_mongoc_commit(session, reply, &error) {
            throw Self.error(error, reply: Self.document(reply), operation: "commit")
        }
    }

    func abortAndEnd(client: OpaquePointer, session: OpaquePointer) {
        var error = bson_error_t()
        if mongoc_client_session_in_transaction(session) {
            _ = mongoc_client_session_abort_transaction(session, &error)
        }
        mongoc_client_session_destroy(session)
        pushClient(client)
    }

    static func document(_ reply: UnsafeMutableRawPointer) -> BSONDocument? {
        let length = Int(outbox_bson_length(reply))
        guard length >= 5, let bytes = outbox_bson_bytes(reply) else { return nil }
        return try? BSONDocument(bson: UnsafeBufferPointer(start: bytes, count: length))
    }

    static func labels(_ reply: BSONDocument?) -> [String] {
        reply?["errorLabels"]?.arrayValue?.compactMap(\.stringValue) ?? []
    }

    static func error(_ error: bson_error_t, reply: BSONDocument?, operation: String) -> MongoError {
        let message = withUnsafeBytes(of: error.message) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        return MongoError(domain: Int(error.domain), code: Int(error.code), message: message, labels: labels(reply), operation: operation)
    }
}
