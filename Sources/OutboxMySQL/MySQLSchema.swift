import Foundation

/// Versioned migrations of the MySQL/MariaDB outbox. Never edit a shipped step; add the next one.
///
/// MySQL commits DDL implicitly, so every step is written to be safe to run again after a crash
/// halfway (`IF NOT EXISTS`, `INSERT IGNORE`); the version row is written last.
enum MySQLSchema {
    static let latestVersion = 1

    static func migrate(_ connection: MySQLConnection, names: MySQLOutboxNames, partitionCount: Int) async throws {
        // Two processes migrating at once take turns.
        let locked = try await connection.query("SELECT GET_LOCK(?, 60)", [.text(names.migrationLock)]).rows.first?[0].int64
        guard locked == 1 else {
            throw MySQLError.usage("Another process held the migration lock for 60 s.", operation: "migrate")
        }
        do {
            try await connection.execute("""
                CREATE TABLE IF NOT EXISTS \(names.migrations) (
                    version INT NOT NULL PRIMARY KEY, applied_at BIGINT NOT NULL) ENGINE=InnoDB
                """, operation: "migrate")
            let current = try await connection.query("SELECT COALESCE(MAX(version), 0) FROM \(names.migrations)").rows.first?[0].int64 ?? 0
            if current < 1 { try await version1(connection, names: names, partitionCount: partitionCount) }
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
}
