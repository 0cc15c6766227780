import Foundation
import Outbox
import OutboxSQLite
import OutboxTesting
import Testing

/// The relay's memory is bounded by bytes, not only by message count: a batch is 500 messages
/// whatever their size, and a backlog of large messages used to be read 500 at a time.
@Suite("CLI large messages")
struct LargeMessagesTests {
    @Test func fiveThousandOneMebibyteMessagesDrainInBoundedMemory() async throws {
        let folder = try TemporaryFolder()
        let store = try SQLiteOutboxStore(path: folder.path("large.sqlite"),
                                          configuration: .init(messageLimits: OutboxMessageLimits(maximumPayloadBytes: 1 << 20)))
        try await store.migrate()
        let payload = [UInt8](repeating: 0x4C, count: 1 << 20)
        for start in stride(from: 0, to: 5_000, by: 100) {
            try await store.writer.write { db in
                try store.enqueue((start..<start + 100).map { OutboxMessage(topic: "large", key: "k\($0 % 50)", payload: payload) }, in: db)
            }
        }
        let relay = try OutboxProcess(["relay", "--store", "sqlite://\(folder.path("large.sqlite"))", "--output", "/dev/null"])
        let pid = relay.process.processIdentifier
        var peakKiB = 0
        let started = ContinuousClock.now
        try await waitUntil("5,000 messages of 1 MiB drain", timeout: .seconds(600)) {
            peakKiB = max(peakKiB, Self.peakResidentKiB(pid) ?? 0)
            return try await store.status(now: Date()).pending == 0
        }
        let elapsed = ContinuousClock.now - started
        peakKiB = max(peakKiB, Self.peakResidentKiB(pid) ?? 0)
        relay.signal(SIGTERM)
        _ = try await relay.wait(timeout: .seconds(30))
        print("5,000 × 1 MiB drained in \(elapsed); relay peak RSS \(peakKiB / 1024) MiB")
        #expect(peakKiB > 0, "the relay's memory was read")
        #expect(peakKiB < 512 * 1024, "the relay's peak RSS was \(peakKiB / 1024) MiB")
    }

    /// `VmHWM` (the peak resident set) of a running process, in KiB.
    static func peakResidentKiB(_ pid: Int32) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmHWM:") }
        return line.flatMap { Int($0.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") }
    }
}
