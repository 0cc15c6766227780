import CMongoC
import Logging
import Outbox
import Synchronization

/// A change stream on the messages collection, on a thread of its own: calls `onInsert` for
/// every insert, reopens the stream after errors, and reports whether it is open so relays know
/// when to poll instead.
final class MongoChangeWatcher: Sendable {
    private let client: MongoClient
    private let database: String
    private let collection: String
    private let watching = Atomic<Bool>(false)
    /// Bumped by every `run` and every `stop`: a watch loop runs only while the generation it
    /// started with is current, so a loop left over from an earlier run ends instead of being
    /// revived when the store runs again.
    private let generation = Atomic<Int>(0)
    private let worker = OutboxBlockingWorker(name: "outbox.mongo.watch")

    /// How long one wait for changes blocks the watcher thread; bounds how long `stop` takes.
    static let maximumAwait: Int64 = 500

    init(client: MongoClient, database: String, collection: String) {
        self.client = client
        self.database = database
        self.collection = collection
    }

    deinit { worker.stop() }

    var isWatching: Bool { watching.load(ordering: .acquiring) }

    func stop() {
        generation.wrappingAdd(1, ordering: .acquiringAndReleasing)
    }

    /// Runs until ``stop()``.
    func run(onInsert: @escaping @Sendable () -> Void, logger: Logger) async {
        let current = generation.wrappingAdd(1, ordering: .acquiringAndReleasing).newValue
        func isCurrent() -> Bool { generation.load(ordering: .acquiring) == current }
        var loggedFailure = false
        while isCurrent() && !Task.isCancelled {
            // The stream holds a pooled client while it is open: take its slot first (MongoClientSlots).
            await client.slots.acquire()
            let failure: String? = try? await worker.run { [self] in self.watchUntilError(generation: current, onInsert: onInsert) }
            client.slots.release()
            watching.store(false, ordering: .releasing)
            if !isCurrent() { return }
            if let failure, !loggedFailure {
                logger.warning("MongoDB change stream unavailable; relays poll until it reopens", metadata: ["outbox.error": "\(failure)"])
                loggedFailure = true
            }
            // A commit made while the stream was down would otherwise wait for a poll.
            onInsert()
            try? await Task.sleep(for: .seconds(1))
        }
    }

    /// Blocks the watcher thread: opens the stream and waits for inserts until an error or stop.
    /// Returns the error's text.
    private func watchUntilError(generation current: Int, onInsert: () -> Void) -> String? {
        client.driver.withPooledClientReturningError { pooled in
            guard let stream = outbox_mongoc_watch_inserts(pooled, database, collection, Self.maximumAwait) else {
                return "the change stream could not be created"
            }
            defer { mongoc_change_stream_destroy(stream) }
            var error = bson_error_t()
            // The stream is open once the first wait returned without an error.
            while generation.load(ordering: .acquiring) == current {
                switch outbox_mongoc_change_stream_next(stream, &error) {
                case 1:
                    onInsert()
                    watching.store(true, ordering: .releasing)
                case 0:
                    watching.store(true, ordering: .releasing)
                default:
                    return MongoDriver.error(error, reply: nil, operation: "watch").description
                }
            }
            return nil
        }
    }
}

extension MongoDriver {
    func withPooledClientReturningError(_ body: (OpaquePointer) -> String?) -> String? {
        let client = popClient()
        defer { pushClient(client) }
        return body(client)
    }
}
