import Foundation
import Outbox
import OutboxTesting

/// What the chaos writer's ledger says was written.
struct ChaosLedger {
    struct Entry {
        let id: UUID
        let key: String
        let isPoison: Bool
    }

    /// Every message in ledger order (which is commit order per key: one task owns a key).
    var entries: [Entry] = []
    /// Messages whose commit was confirmed.
    var confirmed: Set<UUID> = []

    init(path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else { throw ChaosFailure("The ledger \(path) is missing.") }
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
            let words = line.split(separator: " ")
            if words.count == 4, words[0] == "P", let id = UUID(uuidString: String(words[1])) {
                entries.append(Entry(id: id, key: String(words[2]), isPoison: words[3] == "1"))
            } else if words.count == 2, words[0] == "C", let id = UUID(uuidString: String(words[1])) {
                confirmed.insert(id)
            }
            // A torn last line (the writer was killed mid-write) is skipped: its `P` line is
            // complete or the transaction never started.
        }
    }
}

/// The outcome of a chaos run: every committed message accounted for.
struct ChaosReport {
    var committed = 0
    var uncertainCommitted = 0
    var uncertainRolledBack = 0
    var delivered = 0
    var lost = 0
    var duplicates = 0
    var orderViolations = 0
    var unexpected = 0
    var dead = 0
    var poison = 0
    var poisonNotDeadLettered = 0
    var deadLetteredNotPoison = 0
    var deadWithoutReason = 0
    var storeDeliveredCount = 0
    /// Offsets the broker dropped before the consumer read them: published, but not auditable.
    var trimmedOffsets: Int64 = 0
    /// The committed messages that never arrived, for the run's folder (`lost.txt`).
    var lostIDs: [UUID] = []
    /// The committed messages of each key in commit order (uncertain ones resolved), for the
    /// consumers' audit.
    var committedByKey: [String?: [UUID]] = [:]

    /// Audits the consumer's deliveries against the ledger and the store's dead letters.
    ///
    /// A message whose commit is unknown (its writer or database died at commit) counts as
    /// committed when it was delivered or dead-lettered, as rolled back otherwise; the store's own
    /// count of delivered messages then catches a committed one that never arrived.
    ///
    /// Offsets the broker dropped before they were read are reported as `trimmed`, never as loss
    /// or order: the run then cannot prove those messages, and is not clean.
    init(ledger: ChaosLedger, deliveredIDs: [UUID], deadLetters: [OutboxDeadLetter], storeDeliveredCount: Int, trimmedOffsets: Int64 = 0) {
        let deliveredSet = Set(deliveredIDs)
        let deadIDs = Set(deadLetters.map(\.record.message.id))
        var committedByKey: [String?: [UUID]] = [:]
        var poisonIDs: Set<UUID> = []
        for entry in ledger.entries {
            let isCommitted: Bool
            if ledger.confirmed.contains(entry.id) {
                isCommitted = true
            } else if deliveredSet.contains(entry.id) || deadIDs.contains(entry.id) {
                isCommitted = true
                uncertainCommitted += 1
            } else {
                isCommitted = false
                uncertainRolledBack += 1
            }
            guard isCommitted else { continue }
            committedByKey[entry.key, default: []].append(entry.id)
            if entry.isPoison { poisonIDs.insert(entry.id) }
        }
        self.committedByKey = committedByKey
        let audit = DeliveryAudit(committedByKey: committedByKey, deliveredIDs: deliveredIDs, deadLettered: deadIDs)
        committed = committedByKey.values.reduce(0) { $0 + $1.count }
        delivered = audit.delivered
        lost = audit.missing.count
        lostIDs = audit.missing
        duplicates = audit.duplicates
        orderViolations = audit.orderViolations
        unexpected = audit.unexpected
        dead = deadIDs.count
        poison = poisonIDs.count
        poisonNotDeadLettered = poisonIDs.subtracting(deadIDs).count
        deadLetteredNotPoison = deadIDs.subtracting(poisonIDs).count
        deadWithoutReason = deadLetters.filter { ($0.record.lastError ?? "").isEmpty }.count
        self.storeDeliveredCount = storeDeliveredCount
        self.trimmedOffsets = trimmedOffsets
        // The store marked more messages delivered than arrived: some were lost on the way.
        lost = max(lost, storeDeliveredCount - delivered)
        if trimmedOffsets > 0 {
            // The missing ones may be the trimmed ones: name them as such, not as loss.
            lost = max(0, lost - Int(trimmedOffsets))
        }
    }

    var isClean: Bool {
        lost == 0 && orderViolations == 0 && unexpected == 0 && poisonNotDeadLettered == 0 && deadLetteredNotPoison == 0 && deadWithoutReason == 0
            && trimmedOffsets == 0
    }

    func summary(store: String, kills: Int, restarts: Int, writerKills: Int) -> String {
        "chaos \(store): committed=\(committed) delivered=\(delivered) lost=\(lost) duplicates=\(duplicates) "
            + "order_violations=\(orderViolations) dead=\(dead) poison=\(poison) poison_not_dead=\(poisonNotDeadLettered) "
            + "dead_not_poison=\(deadLetteredNotPoison) unexpected=\(unexpected) uncertain_committed=\(uncertainCommitted) "
            + "uncertain_rolled_back=\(uncertainRolledBack) trimmed=\(trimmedOffsets) relay_kills=\(kills) db_restarts=\(restarts) writer_kills=\(writerKills)"
    }
}
