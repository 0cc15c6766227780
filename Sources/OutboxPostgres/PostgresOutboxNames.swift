import Outbox

/// The validated, quoted names of the outbox's tables in one schema: the tables every store has
/// (``OutboxTableNames``, read through as `names.messages`, …) and PostgreSQL's own objects.
///
/// Identifiers cannot be bound as parameters, so they are the one thing interpolated into SQL:
/// they are checked against `[A-Za-z_][A-Za-z0-9_]*` (at most 40 characters) and double-quoted.
@dynamicMemberLookup
struct PostgresOutboxNames: Sendable {
    /// The quoted schema.
    let schema: String
    private let tables: OutboxTableNames
    /// The server-side claim function (schema version 2).
    let claimFunction: String
    /// The server-side enqueue function (schema version 6).
    let enqueueFunction: String
    /// The server-side enqueue of one message (schema version 8); builds since 2026-12-01 send a
    /// prepared statement instead, and the function stays for earlier builds during an upgrade.
    let enqueueOneFunction: String
    /// The server-side acknowledgement function (schema version 7).
    let acknowledgeFunction: String
    /// The LISTEN/NOTIFY channel.
    let channel: String
    /// The first key of the advisory locks that guard commit order (the second is the partition).
    let lockSpace: Int32

    subscript(dynamicMember name: KeyPath<OutboxTableNames, String>) -> String { tables[keyPath: name] }

    /// Another table of the outbox, quoted and schema-qualified, e.g. `table("inbox")`.
    func table(_ name: String) -> String { tables.table(name) }

    /// A table's name without schema or quotes (for naming its indexes).
    func unquotedTable(_ name: String) -> String { tables.unquoted(name) }

    init(schema: String, tablePrefix: String) throws {
        let schema = try OutboxStoreSupport.requireIdentifier(schema, what: "schema", store: "PostgreSQL")
        tables = try OutboxTableNames(store: "PostgreSQL", prefix: tablePrefix) { "\"\(schema)\".\"\($0)\"" }
        self.schema = "\"\(schema)\""
        claimFunction = tables.table("claim")
        enqueueFunction = tables.table("enqueue")
        enqueueOneFunction = tables.table("enqueue_one")
        acknowledgeFunction = tables.table("acknowledge")
        channel = Self.channel(schema: schema, tablePrefix: tablePrefix)
        // Stable across processes: FNV-1a of the qualified name.
        var hash: UInt32 = 0x811c_9dc5
        for byte in "\(schema).\(tablePrefix)".utf8 {
            hash ^= UInt32(byte)
            hash = hash &* 0x0100_0193
        }
        lockSpace = Int32(bitPattern: hash)
    }

    /// The longest channel name PostgreSQL takes (NAMEDATALEN - 1); `pg_notify` refuses longer ones.
    static let maximumChannelBytes = 63

    /// `<prefix>_<schema>` in lower case; when that is longer than PostgreSQL allows (the two names
    /// may be 40 characters each), its first 46 characters and a 64-bit hash of the whole, so two
    /// outboxes never share a channel and every accepted name can enqueue.
    static func channel(schema: String, tablePrefix: String) -> String {
        let full = "\(tablePrefix)_\(schema)".lowercased()
        guard full.utf8.count > maximumChannelBytes else { return full }
        let hex = String(OutboxPartitioning.fnv1a(full.utf8), radix: 16)
        return String(full.prefix(46)) + "_" + String(repeating: "0", count: 16 - hex.count) + hex
    }
}
