import Foundation

/// Describes each message a chaos run lost, for `lost.txt`: whether a second reader found it
/// after all, and where its key's neighbours (in commit order) landed on the broker.
struct ChaosPostMortem {
    let text: String

    /// - Parameters:
    ///   - seen: where the reader during the run found each message.
    ///   - seenAgain: where a second reader found them, `nil` when it failed or there is none.
    init(ledger: ChaosLedger, lostIDs: [UUID], seen: [UUID: [String]], seenAgain: [UUID: [String]]?) {
        var lines: [String] = []
        for id in lostIDs {
            guard let index = ledger.entries.firstIndex(where: { $0.id == id }) else {
                lines.append("\(id.uuidString) not in the ledger")
                continue
            }
            let key = ledger.entries[index].key
            let again = seenAgain.map { $0[id].map { "found on re-read at \($0.joined(separator: ","))" } ?? "absent on re-read" }
                ?? "no re-read"
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
