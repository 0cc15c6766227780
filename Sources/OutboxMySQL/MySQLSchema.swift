import Foundation
import Outbox

/// Versioned migrations of the MySQL/MariaDB outbox. Never edit a shipped step; add the next one.
///
/// MySQL commits DDL implicitly, so every step is written to be safe to run again after a crash
/// halfway (`IF NOT EXISTS`, `INSERT IGNORE`); the version row is written last.
enum MySQLSchema {
    static let latestVersion = 8

    static func migrate(_ connection: MySQLConnection, names: MySQLOutboxNames, partitionCount: Int) async throws {
        // Two processes migrating at once take turns.
        let locked = try await connection.query("SELECT GET_LOCK(?, 60)", [.text(names.migrationLock)]).rows.first?[0].int64
        guard locked == 1 else {
            throw MySQLError.usage("Another process held the migration lock for 60 s; run `outbox migrate` again once it has finished.", operation: "migrate")
        }
        do {
            try await connection.execute("""
                CREATE TABLE IF NOT EXISTS \(names.migrations) (
                    version INT NOT NULL PRIMARY KEY, applied_at BIGINT NOT NULL) ENGINE=InnoDB
                """, operation: "migrate")
            let current = try await connection.query("SELECT COALESCE(MAX(version), 0) FROM \(names.migrations)").rows.first?[0].int64 ?? 0
            if current < 1 { try await version1(connection, names: names, partitionCount: partitionCount) }
            if current < 2 { try await version2(connection, names: names) }
            if current < 3 { try await version3(connection, names: names) }
            if current < 4 { try await version4(connection, names: names) }
            if current < 5 { try await version5(connection, names: names) }
            if current < 6 { try await version6(connection, names: names) }
            if current < 7 { try await version7(connection, names: names) }
            if current < 8 { try await version8(connection, names: names) }
        } catch {
            _ = try? await connection.query("SELECT RELEASE_LOCK(?)", [.text(names.migrationLock)])
            throw error
        }
        _ = try await connection.query("SELECT RELEASE_LOCK(?)", [.text(names.migrationLock)])
    }

    private static func version1(_ connection: MySQLConnection, names: MySQLOutboxNames, partitionCount: Int) async throws {
        // Text travels as bytes (VARBINARY): byte-exact whatever the server's character set, and
        // compared without collation surprises (no case folding, no trailing-space padding).
        let statements = [
            """
            CREATE TABLE IF NOT EXISTS \(names.messages) (
                sequence BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
                id BINARY(16) NOT NULL,
                topic VARBINARY(1024) NOT NULL,
                message_key VARBINARY(1024) NULL,
                message_type VARBINARY(1024) NULL,
                payload LONGBLOB NOT NULL,
                headers MEDIUMBLOB NOT NULL,
                partition_no INT NOT NULL,
                created_at BIGINT NOT NULL,
                available_at BIGINT NOT NULL,
                attempts INT NOT NULL DEFAULT 0,
                last_error TEXT CHARACTER SET utf8mb4 NULL,
                state TINYINT NOT NULL DEFAULT 0,
                finished_at BIGINT NULL,
                UNIQUE KEY outbox_id (id),
                KEY outbox_claim (state, sequence),
                KEY outbox_held (state, partition_no, message_key, sequence),
                KEY outbox_finished (state, finished_at)
            ) ENGINE=InnoDB
            """,
            """
            CREATE TABLE IF NOT EXISTS \(names.leases) (
                partition_no INT NOT NULL PRIMARY KEY,
                owner VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
                expires_at BIGINT NOT NULL DEFAULT 0
            ) ENGINE=InnoDB
            """,
            """
            CREATE TABLE IF NOT EXISTS \(names.relays) (
                relay_id VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL PRIMARY KEY,
                expires_at BIGINT NOT NULL,
                in_flight INT NOT NULL DEFAULT 0
            ) ENGINE=InnoDB
            """,
            "CREATE TABLE IF NOT EXISTS \(names.commitGuard) (partition_no INT NOT NULL PRIMARY KEY) ENGINE=InnoDB",
        ]
        for statement in statements {
            try await connection.execute(statement, operation: "migrate")
        }
        for partition in 0..<partitionCount {
            try await connection.query("INSERT IGNORE INTO \(names.leases) (partition_no) VALUES (?)", [.int(partition)])
            try await connection.query("INSERT IGNORE INTO \(names.commitGuard) (partition_no) VALUES (?)", [.int(partition)])
        }
        try await connection.query("INSERT IGNORE INTO \(names.migrations) (version, applied_at) VALUES (1, ?)",
                                   [.integer(MySQLTime.microseconds(Date()))])
    }

    /// The claim's "held back by a retry" probe, indexed by what it asks. Version 1 indexed
    /// `(state, partition_no, message_key, sequence)`: MySQL has no partial indexes and cannot
    /// range on a correlated `sequence`, so each probe read every pending row of its key and
    /// looked up `attempts` in the table — 500 probes × 1,000 rows per claim on a million-row
    /// backlog (46 ms per claim instead of 1.6 ms). `retrying` is a virtual column that puts the
    /// few rows waiting for a retry in their own index range.
    private static func version2(_ connection: MySQLConnection, names: MySQLOutboxNames) async throws {
        let table = names.messagesTableName
        if try await !hasColumn("retrying", in: table, on: connection) {
            try await connection.execute(
                "ALTER TABLE \(names.messages) ADD COLUMN retrying TINYINT GENERATED ALWAYS AS (attempts > 0) VIRTUAL", operation: "migrate")
        }
        if try await !hasIndex("outbox_retrying", in: table, on: connection) {
            try await connection.execute(
                "ALTER TABLE \(names.messages) ADD INDEX outbox_retrying (state, retrying, partition_no, message_key, sequence)", operation: "migrate")
        }
        if try await hasIndex("outbox_held", in: table, on: connection) {
            try await connection.execute("ALTER TABLE \(names.messages) DROP INDEX outbox_held", operation: "migrate")
        }
        try await connection.query("INSERT IGNORE INTO \(names.migrations) (version, applied_at) VALUES (2, ?)",
                                   [.integer(MySQLTime.microseconds(Date()))])
    }

    /// Which run of a relay holds its registration, so two relays started with one id never
    /// share leases (see `OutboxLeasePlanner`).
    private static func version3(_ connection: MySQLConnection, names: MySQLOutboxNames) async throws {
        try await addColumn("instance VARCHAR(64) CHARACTER SET ascii NOT NULL DEFAULT ''", named: "instance",
                            to: names.relays, listedAs: names.relaysTableName, on: connection)
        try await record(version: 3, names: names, on: connection)
    }

    /// What each relay has published since it started, reported at heartbeats: throughput per relay.
    private static func version4(_ connection: MySQLConnection, names: MySQLOutboxNames) async throws {
        try await addColumn("published BIGINT NOT NULL DEFAULT 0", named: "published",
                            to: names.relays, listedAs: names.relaysTableName, on: connection)
        try await record(version: 4, names: names, on: connection)
    }

    /// Each partition's claim floor: a sequence below which the partition has no pending row.
    /// Claims walk the `(state, sequence)` index from the lowest floor of their partitions instead
    /// of its start, so they no longer step over the index entries of every message drained but
    /// not yet purged (see `MySQLClaimFloor`). 0, the default, is always safe.
    private static func version5(_ connection: MySQLConnection, names: MySQLOutboxNames) async throws {
        try await addColumn("claim_floor BIGINT NOT NULL DEFAULT 0", named: "claim_floor",
                            to: names.commitGuard, listedAs: names.commitGuardTableName, on: connection)
        try await record(version: 5, names: names, on: connection)
    }

    /// The usual heartbeat as one `CALL` (see `MySQLHeartbeatRenewal`). A procedure left by a
    /// step that crashed before recording itself is dropped and made again. The migrating user
    /// needs `CREATE ROUTINE` (MySQL gives the routine's creator `ALTER ROUTINE` and `EXECUTE` on
    /// it); a relay running as another user needs `EXECUTE`.
    private static func version6(_ connection: MySQLConnection, names: MySQLOutboxNames) async throws {
        let procedure = MySQLHeartbeatRenewal.procedure(names)
        let exists = try await connection.query(
            "SELECT COUNT(*) FROM information_schema.routines WHERE routine_schema = DATABASE() AND routine_name = ?",
            [.text(names.unquoted("renew"))]).rows.first?[0].int64 ?? 0 > 0
        // Dropping needs ALTER ROUTINE even when nothing is there: only when there is.
        if exists { try await connection.execute("DROP PROCEDURE \(procedure)", operation: "migrate") }
        try await connection.execute(MySQLHeartbeatRenewal.createSQL(names), operation: "migrate")
        try await record(version: 6, names: names, on: connection)
    }

    /// The messages waiting for a retry get a table of their own, `<prefix>_waiting`, and the
    /// `outbox_retrying` index (and its virtual column) goes. That index held an entry for every
    /// message to find the few waiting for a retry: of the five index trees every insert and
    /// delete of a message maintained, it cost the most (a million-row drain of the table alone
    /// ran about a third faster without it; BENCHMARKS.md, "MariaDB at a million rows").
    ///
    /// A relay of an older build records a retry only in the messages table. One still running
    /// after this step could let later messages of that key overtake it, so the step refuses to
    /// run while a relay is registered; relays of this build cannot start before it (they
    /// require version 7).
    private static func version7(_ connection: MySQLConnection, names: MySQLOutboxNames) async throws {
        try await requireNoRelays(names: names, on: connection,
                                  because: "schema version 7 changes how retries are recorded, and a relay of an older build would record them the old way")
        try await connection.execute("""
            CREATE TABLE IF NOT EXISTS \(names.waiting) (
                sequence BIGINT NOT NULL PRIMARY KEY,
                partition_no INT NOT NULL,
                message_key VARBINARY(1024) NULL,
                KEY outbox_waiting_floor (partition_no, sequence),
                KEY outbox_waiting_key (partition_no, message_key, sequence)
            ) ENGINE=InnoDB
            """, operation: "migrate")
        try await connection.query("""
            INSERT INTO \(names.waiting) (sequence, partition_no, message_key)
            SELECT sequence, partition_no, message_key FROM \(names.messages) WHERE state = 0 AND attempts > 0
            ON DUPLICATE KEY UPDATE partition_no = VALUES(partition_no), message_key = VALUES(message_key)
            """)
        if try await hasIndex("outbox_retrying", in: names.messagesTableName, on: connection) {
            try await connection.execute("ALTER TABLE \(names.messages) DROP INDEX outbox_retrying", operation: "migrate")
        }
        if try await hasColumn("retrying", in: names.messagesTableName, on: connection) {
            try await connection.execute("ALTER TABLE \(names.messages) DROP COLUMN retrying", operation: "migrate")
        }
        try await record(version: 7, names: names, on: connection)
    }

    /// The messages table keeps only pending messages: dead letters and retained deliveries move
    /// to `<prefix>_finished`, keeping their sequences, and the messages table loses its two
    /// secondary indexes over `state` (claims walk the primary key from the claim floors).
    ///
    /// Why: every message's insert and delete maintained four index trees, two of them only for the
    /// few rows that end as dead letters or retained deliveries; the purge of a million drained
    /// rows went through all four. Measured on the shapes alone, a table with the primary key and
    /// `id` drained a million rows 1.6–1.8 times as fast (BENCHMARKS.md, "MariaDB: where the
    /// enqueue's server time goes, and what a million rows cost").
    ///
    /// The `state` and `finished_at` columns stay on the messages table (always pending there):
    /// dropping columns rebuilds the table on servers without instant `DROP COLUMN`. A relay of an
    /// older build would leave finished messages in the messages table, so the step refuses to
    /// run while a relay is registered; relays of this build require version 8. Moving the rows
    /// is one statement: on an outbox holding millions of retained deliveries the step takes as long
    /// as copying them.
    private static func version8(_ connection: MySQLConnection, names: MySQLOutboxNames) async throws {
        try await requireNoRelays(names: names, on: connection,
                                  because: "schema version 8 moves finished messages into a table of their own, and a relay of an older build would leave them in the messages table")
        try await connection.execute("""
            CREATE TABLE IF NOT EXISTS \(names.finished) (
                sequence BIGINT NOT NULL,
                id BINARY(16) NOT NULL,
                topic VARBINARY(1024) NOT NULL,
                message_key VARBINARY(1024) NULL,
                message_type VARBINARY(1024) NULL,
                payload LONGBLOB NOT NULL,
                headers MEDIUMBLOB NOT NULL,
                partition_no INT NOT NULL,
                created_at BIGINT NOT NULL,
                available_at BIGINT NOT NULL,
                attempts INT NOT NULL,
                last_error TEXT CHARACTER SET utf8mb4 NULL,
                state TINYINT NOT NULL,
                finished_at BIGINT NOT NULL,
                PRIMARY KEY (sequence, id),
                KEY outbox_finished_list (state, sequence),
                KEY outbox_finished_age (state, finished_at)
            ) ENGINE=InnoDB
            """, operation: "migrate")
        // A step that crashed after the move and before its delete finds the rows already there.
        try await connection.query("""
            INSERT IGNORE INTO \(names.finished) (\(MySQLFinishedMessages.columns))
            SELECT \(MySQLFinishedMessages.messageColumns), attempts, last_error, state, COALESCE(finished_at, created_at)
            FROM \(names.messages) WHERE state <> 0
            """)
        try await connection.query("DELETE FROM \(names.messages) WHERE state <> 0")
        for index in ["outbox_claim", "outbox_finished"] where try await hasIndex(index, in: names.messagesTableName, on: connection) {
            try await connection.execute("ALTER TABLE \(names.messages) DROP INDEX \(index)", operation: "migrate")
        }
        try await record(version: 8, names: names, on: connection)
    }

    /// Refuses a step that changes what relays write while a relay is registered (a crashed
    /// relay's registration lapses with its lease).
    private static func requireNoRelays(names: MySQLOutboxNames, on connection: MySQLConnection, because reason: String) async throws {
        let running = try await connection.query("SELECT relay_id FROM \(names.relays) WHERE expires_at > ? ORDER BY relay_id LIMIT 6",
                                                  [.integer(MySQLTime.microseconds(Date()))]).rows.compactMap { $0[0].string }
        guard running.isEmpty else {
            let listed = running.prefix(5).joined(separator: ", ") + (running.count > 5 ? ", …" : "")
            throw OutboxError(code: .schemaMismatch, operation: "migrate",
                              message: "Relays are registered on this outbox (\(listed)); stop them (a crashed relay's registration lapses "
                                  + "with its lease), then migrate: \(reason).")
        }
    }

    /// Refuses a schema older than this build's (``OutboxStoreSupport/requireSchema(version:latest:store:)``):
    /// version 8 moved dead letters and retained deliveries out of the messages table.
    static func requireCurrent(names: MySQLOutboxNames, on connection: MySQLConnection) async throws {
        let version = try await connection.query("SELECT COALESCE(MAX(version), 0) FROM \(names.migrations)").rows.first?[0].int64 ?? 0
        try OutboxStoreSupport.requireSchema(version: Int(version), latest: latestVersion, store: "MySQL")
    }

    /// Drops every table and the procedure of the outbox (and its inbox): for throw-away outboxes,
    /// such as the tests' and `outbox bench`'s, never for a user's.
    static func drop(names: MySQLOutboxNames, on pool: MySQLConnectionPool) async throws {
        for table in ["messages", "finished", "waiting", "leases", "relays", "commit_guard", "migrations", "inbox", "inbox_dead"] {
            try await pool.query("DROP TABLE IF EXISTS \(names.table(table))")
        }
        try await pool.query("DROP PROCEDURE IF EXISTS \(MySQLHeartbeatRenewal.procedure(names))")
    }

    /// Adds a column unless `information_schema` lists it already (a step that crashed halfway
    /// may run again).
    private static func addColumn(_ definition: String, named column: String, to table: String, listedAs tableName: String,
                                  on connection: MySQLConnection) async throws {
        if try await !hasColumn(column, in: tableName, on: connection) {
            try await connection.execute("ALTER TABLE \(table) ADD COLUMN \(definition)", operation: "migrate")
        }
    }

    /// Whether `information_schema` lists the column on the table (its unquoted name).
    private static func hasColumn(_ column: String, in tableName: String, on connection: MySQLConnection) async throws -> Bool {
        try await connection.query(
            "SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = ? AND column_name = ?",
            [.text(tableName), .text(column)]).rows.first?[0].int64 ?? 0 > 0
    }

    /// Whether `information_schema` lists the index on the table (its unquoted name).
    private static func hasIndex(_ index: String, in tableName: String, on connection: MySQLConnection) async throws -> Bool {
        try await connection.query(
            "SELECT COUNT(*) FROM information_schema.statistics WHERE table_schema = DATABASE() AND table_name = ? AND index_name = ?",
            [.text(tableName), .text(index)]).rows.first?[0].int64 ?? 0 > 0
    }

    /// Records a finished step; written last, so a crash before it runs the step again.
    private static func record(version: Int, names: MySQLOutboxNames, on connection: MySQLConnection) async throws {
        try await connection.query("INSERT IGNORE INTO \(names.migrations) (version, applied_at) VALUES (?, ?)",
                                   [.int(version), .integer(MySQLTime.microseconds(Date()))])
    }
}
