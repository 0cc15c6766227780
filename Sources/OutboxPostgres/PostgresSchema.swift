import Logging
import PostgresNIO

/// Versioned migrations of the PostgreSQL outbox. Never edit a shipped step; add the next one.
enum PostgresSchema {
    static let latestVersion = 1

    static func migrate(_ client: PostgresClient, names: PostgresOutboxNames, partitionCount: Int, logger: Logger) async throws {
        try await client.query(PostgresQuery(unsafeSQL: "CREATE SCHEMA IF NOT EXISTS \(names.schema)"), logger: logger)
        try await client.query(PostgresQuery(unsafeSQL: """
            CREATE TABLE IF NOT EXISTS \(names.migrations) (
                version INT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())
            """), logger: logger)
        try await client.withTransaction(logger: logger) { connection in
            // Two processes migrating at once take turns.
            try await connection.query("SELECT pg_advisory_xact_lock(\(names.lockSpace), -1)", logger: logger)
            let rows = try await connection.query(PostgresQuery(unsafeSQL: "SELECT coalesce(max(version), 0) FROM \(names.migrations)"), logger: logger)
            var current = 0
            for try await version in rows.decode(Int.self) { current = version }
            if current < 1 { try await version1(connection, names: names, partitionCount: partitionCount, logger: logger) }
        }
    }

    private static func version1(_ connection: PostgresConnection, names: PostgresOutboxNames, partitionCount: Int, logger: Logger) async throws {
        let statements = [
            """
            CREATE TABLE \(names.messages) (
                sequence BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                id UUID NOT NULL UNIQUE,
                topic TEXT NOT NULL,
                message_key TEXT,
                message_type TEXT,
                payload BYTEA NOT NULL,
                headers BYTEA NOT NULL,
                partition INT NOT NULL,
                created_at TIMESTAMPTZ NOT NULL,
                available_at TIMESTAMPTZ NOT NULL,
                attempts INT NOT NULL DEFAULT 0,
                last_error TEXT,
                state SMALLINT NOT NULL DEFAULT 0,
                finished_at TIMESTAMPTZ)
            """,
            // The claim walk: pending rows in sequence order.
            "CREATE INDEX ON \(names.messages) (sequence) WHERE state = 0",
            // Keys held back by a message waiting for its retry.
            "CREATE INDEX ON \(names.messages) (partition, message_key, sequence) WHERE state = 0 AND attempts > 0",
            "CREATE INDEX ON \(names.messages) (finished_at) WHERE state = 2",
            "CREATE INDEX ON \(names.messages) (sequence) WHERE state = 1",
            "CREATE TABLE \(names.leases) (partition INT PRIMARY KEY, owner TEXT, expires_at TIMESTAMPTZ NOT NULL DEFAULT '-infinity')",
            "CREATE TABLE \(names.relays) (relay_id TEXT PRIMARY KEY, expires_at TIMESTAMPTZ NOT NULL, in_flight INT NOT NULL DEFAULT 0)",
        ]
        for statement in statements {
            try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
        }
        var insert = PostgresQuery(unsafeSQL: "INSERT INTO \(names.leases) (partition) SELECT generate_series(0, $1 - 1)")
        insert.binds.append(partitionCount)
        try await connection.query(insert, logger: logger)
        try await connection.query(PostgresQuery(unsafeSQL: "INSERT INTO \(names.migrations) (version) VALUES (1)"), logger: logger)
    }
}
