import ArgumentParser
import Foundation
import Outbox

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Show pending, in-flight and dead messages, the oldest pending age, and who owns which partitions.")

    @OptionGroup var options: StoreOptions

    @Flag(help: "Print JSON instead of text.")
    var json = false

    func run() async throws {
        let location = try options.location()
        let status = try await location.withStore { try await $0.status(now: Date()) }
        if json {
            print(try StatusReport(status).json())
            return
        }
        print("store:          \(location)")
        print("pending:        \(status.pending) (\(status.retrying) waiting for a retry)")
        print("in flight:      \(status.inFlight)")
        print("dead:           \(status.dead)")
        if status.deliveredRetained > 0 { print("delivered kept: \(status.deliveredRetained)") }
        print("oldest pending: \(status.oldestPendingAge.map(Self.format) ?? "-")")
        print("partitions:     \(status.partitionCount)")
        if status.relays.isEmpty {
            print("relays:         none running")
        }
        for relay in status.relays {
            print("relay \(TerminalText.escaped(relay.relayID)): \(relay.partitions.count) partitions \(Self.ranges(relay.partitions)), \(relay.inFlight) in flight")
        }
    }

    static func format(_ duration: Duration) -> String {
        let seconds = duration.timeInterval
        if seconds < 1 { return "\(Int(seconds * 1000)) ms" }
        if seconds < 120 { return String(format: "%.1f s", seconds) }
        if seconds < 7200 { return String(format: "%.1f min", seconds / 60) }
        return String(format: "%.1f h", seconds / 3600)
    }

    /// `[0-7, 9]` for `[0,1,…,7,9]`.
    static func ranges(_ partitions: [Int]) -> String {
        var parts: [String] = []
        var start: Int?
        var previous: Int?
        for partition in partitions.sorted() + [Int.max] {
            if let last = previous, partition == last + 1 { previous = partition; continue }
            if let start, let last = previous { parts.append(start == last ? "\(start)" : "\(start)-\(last)") }
            start = partition
            previous = partition
        }
        return "[" + parts.joined(separator: ", ") + "]"
    }
}

/// `outbox status --json`.
struct StatusReport: Encodable {
    struct Relay: Encodable {
        var relayID: String
        var partitions: [Int]
        var inFlight: Int
    }

    var pending: Int
    var retrying: Int
    var inFlight: Int
    var dead: Int
    var deliveredRetained: Int
    var oldestPendingSeconds: Double?
    var partitionCount: Int
    var relays: [Relay]

    init(_ status: OutboxStatus) {
        pending = status.pending
        retrying = status.retrying
        inFlight = status.inFlight
        dead = status.dead
        deliveredRetained = status.deliveredRetained
        oldestPendingSeconds = status.oldestPendingAge?.timeInterval
        partitionCount = status.partitionCount
        relays = status.relays.map { Relay(relayID: $0.relayID, partitions: $0.partitions, inFlight: $0.inFlight) }
    }

    func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }
}
