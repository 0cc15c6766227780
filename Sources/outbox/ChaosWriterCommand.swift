import ArgumentParser
import Foundation
import Logging
import Outbox
import Synchronization

/// The writer application of `outbox chaos`: enqueues keyed messages continuously, one small
/// transaction at a time, and keeps a ledger of what it committed.
///
/// Ledger lines: `P <id> <key> <poison>` before a transaction commits, `C <id>` after. A line
/// reaches the file with one `write` call, so it survives a SIGKILL of this process. A `P`
/// without its `C` is a message whose commit is unknown (the process or the database died).
struct ChaosWriterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chaos-writer",
        abstract: "The writer application of `outbox chaos` (enqueues keyed messages until SIGTERM).",
        shouldDisplay: false)

    @OptionGroup var options: StoreOptions

    @Option(help: "The topic to write to.")
    var topic: String = "chaos"

    @Option(help: "The ledger file to append to.")
    var ledger: String

    @Option(help: "Ordering keys.")
    var keys: Int = 40

    @Option(help: "Concurrent writer tasks (each owns a share of the keys).")
    var writers: Int = 4

    @Option(help: "Transactions per second, all writers together.")
    var rate: Double = 200

    @Option(help: "Every n-th message is poison: larger than the broker accepts (0: none).")
    var poisonEvery: Int = 150

    @Option(help: "Send poison to this topic instead, small (for a broker that takes large messages: a topic nothing receives).")
    var poisonTopic: String?

    func validate() throws {
        guard keys > 0, writers > 0, writers <= keys else { throw ValidationError("--keys and --writers must be positive, with no more writers than keys.") }
        guard rate > 0 else { throw ValidationError("--rate must be positive.") }
    }

    func run() async throws {
        let logger = try options.makeLogger(label: "outbox.chaos-writer")
        guard let handle = FileHandle(forWritingAtPath: ledger) ?? (FileManager.default.createFile(atPath: ledger, contents: nil)
            ? FileHandle(forWritingAtPath: ledger) : nil)
        else {
            throw ValidationError("Cannot write the ledger \(ledger); check that its folder exists and is writable.")
        }
        handle.seekToEndOfFile()
        let ledger = Ledger(handle: handle)
        // Poison is larger than Kafka's message.max.bytes on purpose, so it must pass enqueue.
        let location = try options.location()
        let open: @Sendable () async throws -> ApplicationWriter = {
            let opened = try await OpenedStore.open(
                location, settings: StoreSettings(messageLimits: OutboxMessageLimits(maximumPayloadBytes: 2_000_000)), logger: logger)
            return ApplicationWriter(started: await opened.start())
        }
        let application = ReopeningWriter(try await open(), open: open)
        let stop = StopFlag()
        let (keys, writers, poisonEvery, topic, poisonTopic) = (self.keys, self.writers, self.poisonEvery, self.topic, self.poisonTopic)
        let signals = DispatchSource.makeSignalSource(signal: SIGTERM, queue: .global())
        signal(SIGTERM, SIG_IGN)
        signals.setEventHandler { stop.set() }
        signals.resume()
        let pause = Duration.milliseconds(Int64(1000 * Double(writers) / rate))
        let counter = Counter()
        await withTaskGroup(of: Void.self) { group in
            for writer in 0..<writers {
                group.addTask {
                    let owned = Array(stride(from: writer, to: keys, by: writers))
                    var turn = 0
                    var failures = 0
                    while !stop.isSet {
                        let key = "key-\(owned[turn % owned.count])"
                        turn += 1
                        let messages = (0..<Int.random(in: 1...3)).map { _ -> (OutboxMessage, Bool) in
                            let number = counter.next()
                            let poison = poisonEvery > 0 && number % poisonEvery == 0
                            let large = poison && poisonTopic == nil
                            let payload = large ? [UInt8](repeating: 0x50, count: 1_100_000) : Array("chaos \(number) \(key)".utf8)
                            let target = poison ? poisonTopic ?? topic : topic
                            return (OutboxMessage(topic: target, key: key, type: poison ? "Poison" : "ChaosEvent", payload: payload), poison)
                        }
                        ledger.append(messages.map { "P \($0.0.id.uuidString) \(key) \($0.1 ? 1 : 0)\n" }.joined())
                        do {
                            // A transaction on a connection the restarted server dropped can hang
                            // in the driver (seen with postgres-nio after a PostgreSQL restart): give
                            // it up after 20 s, its outcome unknown, and write through a new client.
                            let batch = messages.map(\.0)
                            let (writer, generation) = application.current
                            do {
                                try await OutboxStoreCallTimeout.run("write", timeout: .seconds(20)) { try await writer.write(batch) }
                            } catch let error as OutboxError where error.operation == "write" && !stop.isSet {
                                await application.reopen(after: generation, logger: logger)
                                throw error
                            }
                            ledger.append(messages.map { "C \($0.0.id.uuidString)\n" }.joined())
                            failures = 0
                        } catch {
                            // The commit is unknown; these ids stay uncertain in the ledger, and the
                            // next transaction uses new ones.
                            failures += 1
                            if failures == 1 { logger.warning("Writer transaction failed; retrying with new messages", metadata: ["error": "\(error)"]) }
                            try? await Task.sleep(for: .milliseconds(100))
                        }
                        try? await Task.sleep(for: pause)
                    }
                }
            }
        }
        await application.current.writer.close()
    }
}

/// The application: enqueues in transactions of the store's own kind, through the store's
/// clients, which run in the background.
private struct ApplicationWriter: Sendable {
    let started: StartedStore

    func write(_ messages: [OutboxMessage]) async throws { try await started.opened.enqueue(messages) }
    func close() async { await started.stop() }
}

/// The application's writer, replaced by a new one (a new client and pool) when a transaction hung.
private final class ReopeningWriter: Sendable {
    private let state: Mutex<(writer: ApplicationWriter, generation: Int)>
    private let reopening = Mutex(false)
    private let open: @Sendable () async throws -> ApplicationWriter

    init(_ writer: ApplicationWriter, open: @escaping @Sendable () async throws -> ApplicationWriter) {
        state = Mutex((writer, 0))
        self.open = open
    }

    var current: (writer: ApplicationWriter, generation: Int) { state.withLock { $0 } }

    /// Opens a new writer unless another task already replaced the one of `generation`.
    func reopen(after generation: Int, logger: Logger) async {
        let mine = reopening.withLock { busy in
            guard !busy, state.withLock({ $0.generation }) == generation else { return false }
            busy = true
            return true
        }
        guard mine else { return }
        defer { reopening.withLock { $0 = false } }
        logger.warning("A writer transaction hung; writing through a new client")
        while true {
            if let writer = try? await open() {
                let old = state.withLock { state in
                    defer { state = (writer, generation + 1) }
                    return state.writer
                }
                await old.close()
                return
            }
            try? await Task.sleep(for: .seconds(1))
        }
    }
}

/// Appends whole lines to the ledger, one `write` call each, from any task.
private final class Ledger: Sendable {
    private let handle: Mutex<FileHandle>

    init(handle: FileHandle) { self.handle = Mutex(handle) }

    func append(_ text: String) {
        handle.withLock { $0.write(Data(text.utf8)) }
    }
}

/// A stop request, set from a signal handler.
private final class StopFlag: Sendable {
    private let value = Atomic<Bool>(false)
    func set() { value.store(true, ordering: .relaxed) }
    var isSet: Bool { value.load(ordering: .relaxed) }
}

/// Numbers messages across writer tasks.
private final class Counter: Sendable {
    private let value = Atomic<Int>(0)
    func next() -> Int { value.wrappingAdd(1, ordering: .relaxed).newValue }
}
