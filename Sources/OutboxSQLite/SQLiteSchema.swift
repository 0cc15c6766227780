import GRDB

/// The outbox tables, created by named, ordered migrations (never edit a shipped one; add the next).
///
/// The SQL is written with the default prefix `outbox` and renamed for another one
/// (``SQLiteStatements/named(_:prefix:)``); the migrations are named `<prefix>.v1`, … so outboxes
/// with different prefixes in one file migrate apart (the default names are the ones shipped).
enum SQLiteSchema {
    static func migrator(prefix: String, partitionCount: Int) -> DatabaseMigrator {
        @Sendable func named(_ text: String) -> String { SQLiteStatements.named(text, prefix: prefix) }
        var migrator = DatabaseMigrator()
        migrator.registerMigration("\(prefix).v1") { db in
            try db.execute(sql: named("""
                CREATE TABLE outbox_messages (
                    sequence INTEGER PRIMARY KEY AUTOINCREMENT,
                    id TEXT NOT NULL UNIQUE,
                    topic TEXT NOT NULL,
                    message_key TEXT,
                    message_type TEXT,
                    payload BLOB NOT NULL,
                    headers BLOB NOT NULL,
                    partition INTEGER NOT NULL,
                    created_at INTEGER NOT NULL,
                    available_at INTEGER NOT NULL,
                    attempts INTEGER NOT NULL DEFAULT 0,
                    last_error TEXT,
                    state INTEGER NOT NULL DEFAULT 0,
                    finished_at INTEGER
                );
                -- The claim path: pending rows in commit order (partial, so delivered and dead rows cost nothing).
                CREATE INDEX outbox_messages_pending ON outbox_messages(sequence) WHERE state = 0;
                -- Keys held back by a message waiting for its retry.
                CREATE INDEX outbox_messages_retrying ON outbox_messages(partition, message_key, sequence)
                    WHERE state = 0 AND attempts > 0;
                -- Retained deliveries, oldest first, for bounded cleanup passes.
                CREATE INDEX outbox_messages_delivered ON outbox_messages(finished_at) WHERE state = 2;
                -- Dead letters in sequence order, for listing and paging.
                CREATE INDEX outbox_messages_dead ON outbox_messages(sequence) WHERE state = 1;
                CREATE TABLE outbox_leases (
                    partition INTEGER PRIMARY KEY,
                    owner TEXT,
                    expires_at INTEGER NOT NULL DEFAULT 0
                );
                CREATE TABLE outbox_relays (
                    relay_id TEXT PRIMARY KEY,
                    expires_at INTEGER NOT NULL,
                    in_flight INTEGER NOT NULL DEFAULT 0
                );
                """))
            for partition in 0..<partitionCount {
                try db.execute(sql: named("INSERT INTO outbox_leases (partition) VALUES (?)"), arguments: [partition])
            }
        }
        migrator.registerMigration("\(prefix).v2.relay-instance") { db in
            // Which run of a relay holds its registration: two relays with one id never share leases.
            try db.execute(sql: named("ALTER TABLE outbox_relays ADD COLUMN instance TEXT NOT NULL DEFAULT ''"))
        }
        migrator.registerMigration("\(prefix).v3.relay-published") { db in
            // What each relay has published since it started, reported at heartbeats: throughput per relay.
            try db.execute(sql: named("ALTER TABLE outbox_relays ADD COLUMN published INTEGER NOT NULL DEFAULT 0"))
        }
        return migrator
    }
}
