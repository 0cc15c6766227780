import ArgumentParser
import Foundation
import Outbox

struct DeadLettersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dead-letters",
        abstract: "List, retry or discard messages the relay gave up on.",
        subcommands: [List.self, Retry.self, Discard.self],
        defaultSubcommand: List.self)

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List dead letters with their last error (payloads are not shown).")

        @OptionGroup var options: StoreOptions

        @Option(help: "Most dead letters to show.")
        var limit: Int = 50

        @Option(help: "Show those after this sequence (for paging).")
        var after: Int64?

        func run() async throws {
            guard limit > 0 else { throw ValidationError("--limit must be positive.") }
            let (limit, after) = (self.limit, self.after)
            let letters = try await options.location().withStore { try await $0.deadLetters(limit: limit, afterSequence: after) }
            if letters.isEmpty {
                print("No dead letters.")
                return
            }
            let formatter = ISO8601DateFormatter()
            for letter in letters {
                let record = letter.record
                let message = record.message
                let (topic, key, type, reason) = (TerminalText.escaped(message.topic), message.key.map(TerminalText.escaped) ?? "-",
                                                  message.type.map(TerminalText.escaped) ?? "-", record.lastError.map(TerminalText.escaped) ?? "-")
                print("\(record.sequence)\t\(formatter.string(from: letter.failedAt))\t\(message.id.uuidString.lowercased())\ttopic=\(topic)\tkey=\(key)\ttype=\(type)\tattempts=\(record.attempts)\terror=\(reason)")
            }
            if letters.count == limit { print("More may follow: --after \(letters.last!.record.sequence)") }
        }
    }

    struct Retry: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make dead letters pending again, with zero attempts.",
            discussion: """
                A retried dead letter keeps its sequence and is due at once: it is published after what
                its key already delivered and before what of its key is still pending.
                """)

        @OptionGroup var options: StoreOptions
        @Argument(help: "Sequences of the dead letters (from `list`).") var sequences: [Int64] = []
        @Flag(help: "Retry every dead letter.") var all = false

        func validate() throws { try requireSelection(sequences, all) }

        func run() async throws {
            let (sequences, all) = (self.sequences, self.all)
            let count = try await options.location().withStore { store in
                try await forEachSelection(store, sequences, all) { try await store.retryDeadLetters(sequences: $0, now: Date()) }
            }
            print("Retried \(count) dead letter\(count == 1 ? "" : "s").")
        }
    }

    struct Discard: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete dead letters for good.")

        @OptionGroup var options: StoreOptions
        @Argument(help: "Sequences of the dead letters (from `list`).") var sequences: [Int64] = []
        @Flag(help: "Discard every dead letter.") var all = false

        func validate() throws { try requireSelection(sequences, all) }

        func run() async throws {
            let (sequences, all) = (self.sequences, self.all)
            let count = try await options.location().withStore { store in
                try await forEachSelection(store, sequences, all) { try await store.discardDeadLetters(sequences: $0) }
            }
            print("Discarded \(count) dead letter\(count == 1 ? "" : "s").")
        }
    }
}

private func requireSelection(_ sequences: [Int64], _ all: Bool) throws {
    if sequences.isEmpty && !all { throw ValidationError("Name the dead letters by sequence, or pass --all.") }
    if !sequences.isEmpty && all { throw ValidationError("Pass either sequences or --all, not both.") }
}

/// Applies `action` to the named sequences, or to every dead letter page by page.
private func forEachSelection(
    _ store: any OutboxStore, _ sequences: [Int64], _ all: Bool, _ action: ([Int64]) async throws -> Int
) async throws -> Int {
    guard all else { return try await action(sequences) }
    var total = 0
    var after: Int64?
    while true {
        let page = try await store.deadLetters(limit: 1000, afterSequence: after).map(\.record.sequence)
        guard let last = page.last else { return total }
        total += try await action(page)
        after = last
    }
}
