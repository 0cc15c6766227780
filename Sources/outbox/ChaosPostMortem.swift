import Foundation
import OutboxKafka

/// Describes each message a chaos run lost, for `lost.txt`: whether a second reader found it
/// after all, and where its key's neighbours (in commit order) landed in Kafka.
struct ChaosPostMortem {
    let text: String

    init(ledger: ChaosLedger, lostIDs: [UUID], followed: [KafkaReceivedMessage], reread: [KafkaReceivedMessage]?) {
        func positions(_ messages: [KafkaReceivedMessage]) -> [UUID: [String]] {
            var found: [UUID: [String]] = [:]
            for message in messages {
                guard let id = message.outboxID else { continue }
                found[id, default: []].append("p\(message.partition)@\(message.offset)")
            }
            return found
        }
        let seen = positions(followed)
        let seenAgain = reread.map(positions)
        var lines: [String] = []
        for id in lostIDs {
            guard let index = ledger.entries.firstIndex(where: { $0.id == id }) else {
                lines.append("\(id.uuidString) not in the ledger")
                continue
            }
            let key = ledger.entries[index].key
            let again = seenAgain.map { $0[id].map { "found on re-read at \($0.joined(separator: ","))" } ?? "absent on re-read" }
                ?? "re-read failed"
            lines.append("\(id.uuidString) key=\(key) confirmed=\(ledger.confirmed.contains(id)) \(again)")
            // Up to three messages of the same key either side, as the follower saw them.
            let sameKey = ledger.entries.indices.filter { ledger.entries[$0].key == key }
            guard let at = sameKey.firstIndex(of: index) else { continue }
            for neighbour in sameKey[max(0, at - 3)...min(sameKey.count - 1, at + 3)] where neighbour != index {
                let entry = ledger.entries[neighbour]
                let where_ = seen[entry.id]?.joined(separator: ",") ?? "not seen"
                lines.append("  \(neighbour < index ? "before" : "after ") \(entry.id.uuidString) confirmed=\(ledger.confirmed.contains(entry.id)) poison=\(entry.isPoison) \(where_)")
            }
        }
        text = lines.joined(separator: "\n") + "\n"
    }
}
