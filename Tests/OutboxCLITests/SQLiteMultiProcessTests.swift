import Foundation
import GRDB
import Outbox
import OutboxSQLite
import OutboxTesting
import Synchronization
import Testing

/// The application (this test process) and the relays (`outbox relay` processes) share one SQLite
/// file, as they would in production.
@Suite("SQLite multi-process", .serialized)
struct SQLiteMultiProcessTests {
    static let keys = 100

    /// Writes `count` keyed messages from 4 concurrent writers; returns ids per key in commit order.
    func write(_ count: Int, to store: SQLiteOutboxStore, progress: @escaping @Sendable (Int) -> Void = { _ in }) async throws -> [String?: [UUID]] {
        try await withThrowingTaskGroup(of: [String?: [UUID]].self) { group in
            for writer in 0..<4 {
                group.addTask {
                    var ids: [String?: [UUID]] = [:]
                    var index = writer
                    while index < count {
                        // Transactions of 1 to 5 messages, keys owned by this writer.
                        let size = min(1 + index % 5, (count - index + 3) / 4)
                        var batch: [OutboxMessage] = []
                        for step in 0..<max(1, size) where index + step * 4 < count {
                            let n = index + step * 4
                            let key = "key-\(writer + 4 * (n % (Self.keys / 4)))"
                            batch.append(OutboxMessage(topic: "orders", key: key, type: "OrderPlaced", text: "\(key) #\(n)"))
                        }
                        try await store.writer.write { [batch] db in
                            try db.execute(sql: "INSERT INTO orders (note) VALUES (?)", arguments: ["order"])
                            try store.enqueue(batch, in: db)
                        }
                        for message in batch { ids[message.key, default: []].append(message.id) }
                        index += batch.count * 4
                        progress(batch.count)
                    }
                    return ids
                }
            }
            var all: [String?: [UUID]] = [:]
            for try await part in group { all.merge(part) { $0 + $1 } }
            return all
        }
    }

    func makeStore(_ folder: borrowing TemporaryFolder) async throws -> SQLiteOutboxStore {
        let store = try SQLiteOutboxStore(path: folder.path("app.sqlite"), configuration: .init(partitionCount: 16))
        try await store.migrate()
        try await store.writer.write { db in
            try db.execute(sql: "CREATE TABLE orders (id INTEGER PRIMARY KEY, note TEXT NOT NULL)")
        }
        return store
    }

    func startRelay(_ name: String, _ folder: borrowing TemporaryFolder) throws -> OutboxProcess {
        try OutboxProcess([
            "relay", "--store", "sqlite://\(folder.path("app.sqlite"))", "--output", folder.path("\(name).jsonl"),
            "--relay-id", name, "--lease-seconds", "1.5", "--batch-size", "200", "--log-level", "warning",
        ])
    }

    /// Every line of every relay's file, ordered by publish time (a file is in publish order already).
    func deliveries(_ folder: borrowing TemporaryFolder, relays: [String]) throws -> [OutboxJSONLine] {
        var all: [(line: OutboxJSONLine, relay: Int, index: Int)] = []
        for (relay, name) in relays.enumerated() where FileManager.default.fileExists(atPath: folder.path("\(name).jsonl")) {
            for (index, line) in try OutboxJSONLine.read(contentsOf: folder.path("\(name).jsonl")).enumerated() {
                all.append((line, relay, index))
            }
        }
        return all.sorted { ($0.line.publishedAt, $0.relay, $0.index) < ($1.line.publishedAt, $1.relay, $1.index) }.map(\.line)
    }

    func waitForAll(_ total: Int, _ folder: borrowing TemporaryFolder, relays: [String]) async throws {
        let deadline = ContinuousClock.now + .seconds(120)
        // The relays append to their files while this reads them: a last line still being written
        // does not parse yet, so a failed read means "not yet" here (the final read is strict).
        while Set((try? deliveries(folder, relays: relays))?.map(\.id) ?? []).count < total {
            #expect(ContinuousClock.now < deadline, "relays did not publish all \(total) messages in time")
            if ContinuousClock.now > deadline { return }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    /// Waits until `count` relays hold a fair share of the partitions each.
    func waitForRelays(_ count: Int, _ store: SQLiteOutboxStore) async throws {
        try await waitUntil("\(count) relay processes share the partitions", timeout: .seconds(30)) {
            let status = try await store.status(now: Date())
            return status.relays.count == count && status.relays.allSatisfy { $0.partitions.count >= status.partitionCount / count }
        }
    }

    @Test func appAndTwoRelayProcessesShareOneFile() async throws {
        let folder = try TemporaryFolder()
        let store = try await makeStore(folder)
        let relays = [try startRelay("relay-a", folder), try startRelay("relay-b", folder)]
        try await waitForRelays(2, store)
        let committed = try await write(4_000, to: store)
        try await waitForAll(4_000, folder, relays: ["relay-a", "relay-b"])
        for relay in relays { relay.signal(SIGTERM) }
        for relay in relays { #expect(try await relay.wait(timeout: .seconds(15)) == 0, "a relay exits 0 after SIGTERM") }

        let lines = try deliveries(folder, relays: ["relay-a", "relay-b"])
        let audit = DeliveryAudit(committedByKey: committed, deliveredIDs: lines.map(\.id))
        #expect(audit.isClean, "\(audit)")
        #expect(audit.duplicates == 0, "no relay died: \(audit)")
        #expect(Set(lines.map(\.sequence)).count == 4_000)
        let perRelay = try ["relay-a", "relay-b"].map { try OutboxJSONLine.read(contentsOf: folder.path("\($0).jsonl")).count }
        #expect(perRelay.allSatisfy { $0 > 0 }, "both relays took part: \(perRelay)")
        let status = try await store.status(now: Date())
        #expect(status.pending == 0 && status.relays.isEmpty)
    }

    @Test func relayKilledMidStreamLosesNothing() async throws {
        let folder = try TemporaryFolder()
        let store = try await makeStore(folder)
        let first = try startRelay("relay-a", folder)
        let second = try startRelay("relay-b", folder)
        try await waitForRelays(2, store)
        let written = Counter()
        let writing = Task { try await write(6_000, to: store) { written.add($0) } }
        while written.value < 2_000 { try await Task.sleep(for: .milliseconds(10)) }
        first.signal(SIGKILL)
        _ = try await first.wait(timeout: .seconds(5))
        let third = try startRelay("relay-c", folder)
        let committed = try await writing.value
        let names = ["relay-a", "relay-b", "relay-c"]
        try await waitForAll(6_000, folder, relays: names)
        for relay in [second, third] { relay.signal(SIGTERM) }
        for relay in [second, third] { #expect(try await relay.wait(timeout: .seconds(15)) == 0) }

        let audit = DeliveryAudit(committedByKey: committed, deliveredIDs: try deliveries(folder, relays: names).map(\.id))
        #expect(audit.isClean, "after SIGKILL of a relay: \(audit)")
        // Only what the killed relay had in flight may repeat: at most 2 batches of 200.
        #expect(audit.duplicates <= 400, "\(audit)")
        let status = try await store.status(now: Date())
        #expect(status.pending == 0)
    }
}

final class Counter: Sendable {
    private let storage = Mutex(0)
    func add(_ amount: Int) { storage.withLock { $0 += amount } }
    var value: Int { storage.withLock { $0 } }
}
