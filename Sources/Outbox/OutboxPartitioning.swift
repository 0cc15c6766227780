/// Maps a message to one of the store's virtual partitions, which relays lease.
///
/// The mapping is fixed at enqueue and must never change for a key, because per-key order is
/// kept inside a partition. FNV-1a is used: stable across processes, platforms and releases
/// (unlike Swift's seeded `Hasher`).
public enum OutboxPartitioning {
    /// The virtual partition of a message with this key; keyless messages spread by id.
    public static func partition(key: String?, id: OutboxMessage.ID, partitionCount: Int) -> Int {
        precondition(partitionCount > 0, "partitionCount must be positive")
        let hash: UInt64
        if let key {
            hash = fnv1a(key.utf8)
        } else {
            hash = fnv1a(OutboxUUIDText.string(id, uppercase: true).utf8)  // the same text as `uuidString`
        }
        return Int(hash % UInt64(partitionCount))
    }

    /// 64-bit FNV-1a of `bytes`; the stores use it too where a name needs a stable hash.
    package static func fnv1a<Bytes: Sequence>(_ bytes: Bytes) -> UInt64 where Bytes.Element == UInt8 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01b3
        }
        return hash
    }
}

extension OutboxMessage: Identifiable {}
