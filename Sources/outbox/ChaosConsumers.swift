import ArgumentParser
import Foundation
import Outbox
import OutboxTesting

/// The consumer side of `outbox chaos`: `outbox chaos-consumer` processes in one Kafka consumer
/// group, handling the topic into the store under test through its inbox. The run SIGKILLs them
/// (their partitions move once their session times out) and stops them gracefully (they finish,
/// commit and leave: a rebalance), and restarts each at once.
final class ChaosConsumers: @unchecked Sendable {
    // @unchecked: driven by the chaos command's one task.
    let processes: [ChaosProcess]

    init(count: Int, storeURL: String, kafkaBrokers: String, folder: String) {
        processes = (0..<count).map { index in
            ChaosProcess(name: "consumer-\(index)", arguments: [
                "chaos-consumer", "--store", storeURL, "--kafka-brokers", kafkaBrokers, "--name", "consumer-\(index)",
                "--log-level", "warning",
            ], logPath: "\(folder)/consumer-\(index).log")
        }
    }

    /// Creates the business table and the inbox once, before any consumer starts (two processes
    /// migrating at the same time would race), and checks that neither holds an earlier run's rows.
    static func prepare(_ opened: OpenedStore) async throws {
        guard let inbox = opened.store as? any OutboxInboxStore else {
            throw ChaosFailure("The store \(opened.name) has no inbox.")
        }
        try await opened.createBusinessTable()
        try await inbox.migrateInbox()
        let notes = try await opened.businessNotes().count
        let dead = try await inbox.inboxDeadLetters(group: ChaosConsumerCommand.group, limit: 1, afterID: nil).count
        guard notes == 0 && dead == 0 else {
            throw ValidationError("The store's business table or inbox is not empty (\(notes) rows, \(dead) inbox dead letters); run chaos on an empty store.")
        }
    }

    func start(children: ChaosChildren) throws {
        for process in processes {
            try process.start()
            children.add(process)
        }
    }

    /// SIGKILLs a consumer (mid-transaction, perhaps) and restarts it after a moment.
    func crashOne() async throws -> Int {
        let index = Int.random(in: 0..<processes.count)
        await processes[index].crash()
        try await Task.sleep(for: .milliseconds(Int64.random(in: 200...1500)))
        try processes[index].start()
        return index
    }

    /// Stops a consumer with SIGTERM (it finishes its handlers, commits and leaves the group) and
    /// restarts it: two rebalances.
    func stopOne() async throws -> Int {
        let index = Int.random(in: 0..<processes.count)
        await processes[index].stop(grace: .seconds(15))
        try processes[index].start()
        return index
    }

    /// Throws when a consumer exited without being asked to.
    func checkRunning(folder: String) throws {
        for process in processes where !process.isRunning {
            throw ChaosFailure("\(process.name) exited on its own; see its log in \(folder).")
        }
    }

    func stopAll() async {
        for process in processes { await process.stop(grace: .seconds(15)) }
    }

    /// What the consumers did, read from the store: the rows they wrote and the inbox's dead letters.
    static func read(_ opened: OpenedStore) async throws -> (handlings: [ChaosHandling], deadLetters: [OutboxInboxDeadLetter]) {
        guard let inbox = opened.store as? any OutboxInboxStore else { return ([], []) }
        let handlings = try await opened.businessNotes().compactMap(ChaosHandling.init(note:))
        var deadLetters: [OutboxInboxDeadLetter] = []
        while true {
            let page = try await inbox.inboxDeadLetters(group: ChaosConsumerCommand.group, limit: 500, afterID: deadLetters.last?.id)
            deadLetters += page
            if page.count < 500 { break }
        }
        return (handlings, deadLetters)
    }
}

/// One row a chaos consumer wrote: `handled <outbox-id> <nanoseconds> <consumer>`.
struct ChaosHandling {
    let id: UUID?
    let nanoseconds: Int64
    let consumer: String

    init?(note: String) {
        let words = note.split(separator: " ")
        guard words.count == 4, words[0] == "handled", let nanoseconds = Int64(words[2]) else { return nil }
        id = UUID(uuidString: String(words[1]))
        self.nanoseconds = nanoseconds
        consumer = String(words[3])
    }
}

/// The consumer side of a chaos run, audited: every message the broker holds handled exactly once
/// in per-key order, or (the consumer's poison) dead-lettered in the inbox.
struct ChaosConsumerAudit {
    var handled = 0
    var handledTwice = 0
    var notHandled = 0
    var orderViolations = 0
    var unexpected = 0
    var dead = 0
    var poison = 0
    var poisonNotDead = 0
    var deadNotPoison = 0
    var byConsumer: [String: Int] = [:]

    /// - Parameters:
    ///   - committedByKey: the committed messages per key, in commit order.
    ///   - published: what the broker holds (the consumers can only handle those).
    init(committedByKey: [String?: [UUID]], published: Set<UUID>, handlings: [ChaosHandling], deadLetters: [OutboxInboxDeadLetter]) {
        let expected = committedByKey.mapValues { $0.filter(published.contains) }
        let deadIDs = Set(deadLetters.compactMap(\.message.outboxID))
        let ordered = handlings.enumerated().sorted { ($0.element.nanoseconds, $0.offset) < ($1.element.nanoseconds, $1.offset) }.map(\.element)
        // A row without an outbox id cannot be any committed message.
        let audit = DeliveryAudit(committedByKey: expected, deliveredIDs: ordered.map { $0.id ?? UUID() }, deadLettered: deadIDs)
        handled = audit.delivered
        handledTwice = audit.duplicates
        notHandled = audit.missing.count
        orderViolations = audit.orderViolations
        unexpected = audit.unexpected + deadLetters.count - deadIDs.count
        dead = deadIDs.count
        let poisonIDs = Set(expected.values.joined().filter(ChaosConsumerCommand.isPoison))
        poison = poisonIDs.count
        poisonNotDead = poisonIDs.subtracting(deadIDs).count
        deadNotPoison = deadIDs.subtracting(poisonIDs).count
        for handling in handlings { byConsumer[handling.consumer, default: 0] += 1 }
    }

    /// Distinct messages handled or dead-lettered, for the wait at the end of the run.
    static func finished(handlings: [ChaosHandling], deadLetters: [OutboxInboxDeadLetter]) -> Int {
        Set(handlings.compactMap(\.id)).union(deadLetters.compactMap(\.message.outboxID)).count
    }

    var isClean: Bool {
        handledTwice == 0 && notHandled == 0 && orderViolations == 0 && unexpected == 0 && poisonNotDead == 0 && deadNotPoison == 0
    }

    /// The consumer's part of the summary line.
    func summary(kills: Int, stops: Int) -> String {
        "handled=\(handled) handled_twice=\(handledTwice) not_handled=\(notHandled) consumer_order_violations=\(orderViolations) "
            + "consumer_dead=\(dead) consumer_poison=\(poison) consumer_unexpected=\(unexpected) consumer_kills=\(kills) consumer_stops=\(stops)"
    }
}
