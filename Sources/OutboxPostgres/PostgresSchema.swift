import Logging
import Outbox
import PostgresNIO

/// Versioned migrations of the PostgreSQL outbox. Never edit a shipped step; add the next one.
enum PostgresSchema {
    static let latestVersion = 8

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
            if current < 2 { try await version2(connection, names: names, logger: logger) }
            if current < 3 { try await version3(connection, names: names, logger: logger) }
            if current < 4 { try await version4(connection, names: names, logger: logger) }
            if current < 5 { try await version5(connection, names: names, logger: logger) }
            if current < 6 { try await version6(connection, names: names, logger: logger) }
            if current < 7 { try await version7(connection, names: names, logger: logger) }
            if current < 8 { try await version8(connection, names: names, logger: logger) }
        }
    }

    /// Refuses a schema older than this build's (``OutboxStoreSupport/requireSchema(version:latest:store:)``).
    static func requireCurrent(_ client: PostgresClient, names: PostgresOutboxNames, logger: Logger) async throws {
        let rows = try await client.query(PostgresQuery(unsafeSQL: "SELECT coalesce(max(version), 0) FROM \(names.migrations)"), logger: logger)
        var version = 0
        for try await found in rows.decode(Int.self) { version = found }
        try OutboxStoreSupport.requireSchema(version: version, latest: latestVersion, store: "PostgreSQL")
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

    /// The claim as one server-side call: one round trip instead of four (BEGIN, try-locks, read,
    /// COMMIT), which is most of the relay's wake-up-to-publish latency.
    ///
    /// The try-locks and the read stay two statements: a VOLATILE function takes a new snapshot
    /// for each, so the read sees every transaction that held a partition's shared lock (see
    /// "Commit order" on the store). Called outside an explicit transaction, its locks end with
    /// the call. The planner settings keep the claim on the ordered index walk that LIMIT stops
    /// (with stale statistics it chose a bitmap scan plus a sort of every pending row), and custom
    /// plans let the "not in flight" list be a hashed lookup.
    /// How every version of the claim function runs (its text is the same as version 2 shipped).
    private static let claimFunctionSettings = """
        LANGUAGE plpgsql VOLATILE
            SET enable_sort = off
            SET enable_bitmapscan = off
            SET plan_cache_mode = force_custom_plan
            SET search_path = pg_catalog, pg_temp
        """

    private static func version2(_ connection: PostgresConnection, names: PostgresOutboxNames, logger: Logger) async throws {
        // A queue table churns: every row is inserted and deleted within seconds. Unthrottled,
        // early autovacuum keeps the dead index entries the claim walk steps over few; with the
        // defaults (20 % dead rows, cost-delayed) a million-row drain could fall to a third of
        // its speed while vacuum trailed behind (the second statement).
        try await apply(version: 2, on: connection, names: names, logger: logger, """
            CREATE OR REPLACE FUNCTION \(names.claimFunction)(
                wanted INT[], lock_space INT, max_rows BIGINT, due TIMESTAMPTZ, skipped BIGINT[])
            RETURNS SETOF \(names.messages)
            \(claimFunctionSettings)
            AS $claim$
            DECLARE
                clear INT[];
            BEGIN
                SELECT coalesce(array_agg(p), '{}') INTO clear
                FROM unnest(wanted) AS p
                WHERE pg_try_advisory_xact_lock(lock_space, p);
                IF cardinality(clear) = 0 THEN
                    RETURN;
                END IF;
                RETURN QUERY
                    SELECT m.* FROM \(names.messages) AS m
                    WHERE m.state = 0 AND m.available_at <= due AND m.partition = ANY(clear)
                      AND m.sequence <> ALL(skipped)
                      AND NOT EXISTS (
                          SELECT 1 FROM \(names.messages) AS e
                          WHERE e.state = 0 AND e.attempts > 0 AND e.partition = m.partition
                            AND e.message_key = m.message_key AND e.sequence < m.sequence AND e.available_at > due)
                    ORDER BY m.sequence
                    LIMIT max_rows;
            END
            $claim$
            """, """
            ALTER TABLE \(names.messages) SET (autovacuum_vacuum_cost_delay = 0, autovacuum_vacuum_scale_factor = 0.01,
                                               autovacuum_vacuum_insert_scale_factor = 0.05, autovacuum_analyze_scale_factor = 0.05)
            """)
    }

    /// Which run of a relay holds its registration, so two relays started with one id never
    /// share leases (see `OutboxLeasePlanner`).
    private static func version3(_ connection: PostgresConnection, names: PostgresOutboxNames, logger: Logger) async throws {
        try await apply(version: 3, on: connection, names: names, logger: logger,
                        "ALTER TABLE \(names.relays) ADD COLUMN IF NOT EXISTS instance TEXT NOT NULL DEFAULT ''")
    }

    /// What each relay has published since it started, reported at heartbeats: throughput per relay.
    private static func version5(_ connection: PostgresConnection, names: PostgresOutboxNames, logger: Logger) async throws {
        try await apply(version: 5, on: connection, names: names, logger: logger,
                        "ALTER TABLE \(names.relays) ADD COLUMN IF NOT EXISTS published BIGINT NOT NULL DEFAULT 0")
    }

    /// The enqueue as a server-side function. The statement it replaces (a CTE over ten `unnest`ed
    /// arrays) was parsed and planned on every enqueue, which cost more than the insert itself;
    /// PL/pgSQL keeps the plans of its statements for the session, so a call costs only its
    /// execution. In separate statements, it also states the commit-order rule plainly: the shared
    /// locks of the message's partitions are held before the insert draws the first sequence.
    /// Columns arrive as parallel arrays because postgres-nio binds arrays, not rows; `has_keys` and
    /// `has_types` carry the NULLs its arrays cannot.
    private static func version6(_ connection: PostgresConnection, names: PostgresOutboxNames, logger: Logger) async throws {
        try await apply(version: 6, on: connection, names: names, logger: logger, """
            CREATE OR REPLACE FUNCTION \(names.enqueueFunction)(
                channel TEXT, lock_space INT, locked INT[], ids UUID[], topics TEXT[], message_keys TEXT[], has_keys BOOL[],
                message_types TEXT[], has_types BOOL[], payloads BYTEA[], headers BYTEA[], partitions INT[],
                created TIMESTAMPTZ[])
            RETURNS VOID LANGUAGE plpgsql
            AS $enqueue$
            BEGIN
                PERFORM pg_advisory_xact_lock_shared(lock_space, p) FROM unnest(locked) AS p;
                PERFORM pg_notify(channel, '');
                INSERT INTO \(names.messages)
                    (id, topic, message_key, message_type, payload, headers, partition, created_at, available_at)
                SELECT u.id, u.topic, CASE WHEN u.has_key THEN u.message_key END, CASE WHEN u.has_type THEN u.message_type END,
                       u.payload, u.headers, u.partition, u.created_at, 'epoch'::timestamptz
                FROM unnest(ids, topics, message_keys, has_keys, message_types, has_types, payloads, headers, partitions, created)
                     WITH ORDINALITY AS u(id, topic, message_key, has_key, message_type, has_type, payload, headers,
                                          partition, created_at, position)
                ORDER BY u.position;
            END
            $enqueue$
            """)
    }

    /// The enqueue of one message, the common case, with one argument per column. Version 6's
    /// function takes parallel arrays, which the call builds, the server unpacks and `unnest` sorts
    /// back into order: measured with `pgbench` on prepared calls, a one-message transaction took
    /// 0.538 ms through it, 0.505 ms through this one, and 0.480 ms with the bare `INSERT` (no
    /// lock, no notification). Same locks, notification and insert as version 6.
    private static func version8(_ connection: PostgresConnection, names: PostgresOutboxNames, logger: Logger) async throws {
        try await apply(version: 8, on: connection, names: names, logger: logger, """
            CREATE OR REPLACE FUNCTION \(names.enqueueOneFunction)(
                channel TEXT, lock_space INT, message_partition INT, message_id UUID, message_topic TEXT, message_key TEXT,
                message_type TEXT, message_payload BYTEA, message_headers BYTEA, created TIMESTAMPTZ)
            RETURNS VOID LANGUAGE plpgsql
            AS $enqueue$
            BEGIN
                PERFORM pg_advisory_xact_lock_shared(lock_space, message_partition);
                PERFORM pg_notify(channel, '');
                INSERT INTO \(names.messages)
                    (id, topic, message_key, message_type, payload, headers, partition, created_at, available_at)
                VALUES (message_id, message_topic, message_key, message_type, message_payload, message_headers,
                        message_partition, created, 'epoch'::timestamptz);
            END
            $enqueue$
            """)
    }

    /// The acknowledgement as a server-side function, for the reason of version 6: sent as text,
    /// its statement was parsed and planned on every call, about 0.5 ms of a 500-message
    /// acknowledgement's 1.5 ms on the test server. The statement is the one it replaces; the
    /// delivered rows are deleted, or kept as state 2 when `retain` (a one-time filter skips the
    /// other). Every write is limited to the partitions in `owned`, whose `FOR SHARE` locks keep
    /// the leases the relay's until commit, so another relay's heartbeat cannot take them between
    /// the check and the writes (fencing).
    private static func version7(_ connection: PostgresConnection, names: PostgresOutboxNames, logger: Logger) async throws {
        try await apply(version: 7, on: connection, names: names, logger: logger, """
            CREATE OR REPLACE FUNCTION \(names.acknowledgeFunction)(
                relay TEXT, delivered BIGINT[], retry_sequences BIGINT[], retry_at TIMESTAMPTZ[], retry_errors TEXT[],
                finished TIMESTAMPTZ, dead_sequences BIGINT[], dead_errors TEXT[], retain BOOL,
                OUT applied BIGINT, OUT owned_partitions INT[])
            LANGUAGE plpgsql
            AS $acknowledge$
            BEGIN
                WITH owned AS MATERIALIZED (
                    SELECT partition FROM \(names.leases) WHERE owner = relay FOR SHARE),
                removed AS (
                    DELETE FROM \(names.messages) AS m
                    WHERE NOT retain AND m.sequence = ANY(delivered) AND m.state = 0 AND m.partition IN (SELECT partition FROM owned)
                    RETURNING 1),
                kept AS (
                    UPDATE \(names.messages) AS m SET state = 2, finished_at = finished
                    WHERE retain AND m.sequence = ANY(delivered) AND m.state = 0 AND m.partition IN (SELECT partition FROM owned)
                    RETURNING 1),
                retried AS (
                    UPDATE \(names.messages) AS m
                    SET attempts = m.attempts + 1, available_at = u.available_at, last_error = u.error
                    FROM unnest(retry_sequences, retry_at, retry_errors) AS u(sequence, available_at, error)
                    WHERE m.sequence = u.sequence AND m.state = 0 AND m.partition IN (SELECT partition FROM owned)
                    RETURNING 1),
                buried AS (
                    UPDATE \(names.messages) AS m
                    SET attempts = m.attempts + 1, state = 1, last_error = u.error, finished_at = finished
                    FROM unnest(dead_sequences, dead_errors) AS u(sequence, error)
                    WHERE m.sequence = u.sequence AND m.state = 0 AND m.partition IN (SELECT partition FROM owned)
                    RETURNING 1)
                SELECT (SELECT count(*) FROM removed) + (SELECT count(*) FROM kept) + (SELECT count(*) FROM retried)
                           + (SELECT count(*) FROM buried),
                       (SELECT coalesce(array_agg(partition), '{}') FROM owned)
                INTO applied, owned_partitions;
            END
            $acknowledge$
            """)
    }

    /// Runs a step's statements and records its version, inside the migration's transaction.
    private static func apply(version: Int, on connection: PostgresConnection, names: PostgresOutboxNames, logger: Logger,
                              _ statements: String...) async throws {
        for statement in statements {
            try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
        }
        try await connection.query(PostgresQuery(unsafeSQL: "INSERT INTO \(names.migrations) (version) VALUES (\(version))"), logger: logger)
    }

    /// The claim with a byte bound: it stops after the message whose payload brings the running
    /// total to `max_bytes`, so a backlog of large messages is read a few at a time. The running
    /// total is taken over the `max_rows` candidates only (a window beside the LIMIT would run
    /// over every pending row first). It waits, briefly, for the `starved` partitions' locks
    /// (``OutboxPartitionStarvation``) and returns a marker row (sequence -1) for each partition
    /// it could not lock. Same try-locks and planner settings as version 2, whose five-argument
    /// function stays for relays not yet upgraded.
    private static func version4(_ connection: PostgresConnection, names: PostgresOutboxNames, logger: Logger) async throws {
        try await apply(version: 4, on: connection, names: names, logger: logger, """
            CREATE OR REPLACE FUNCTION \(names.claimFunction)(
                wanted INT[], lock_space INT, max_rows BIGINT, due TIMESTAMPTZ, skipped BIGINT[], max_bytes BIGINT,
                starved INT[])
            RETURNS SETOF \(names.messages)
            \(claimFunctionSettings)
            AS $claim$
            DECLARE
                clear INT[];
                p INT;
            BEGIN
                -- Starved partitions: wait (up to a second) behind the transactions open now; the
                -- waiting exclusive request queues ahead of later writers' shared ones.
                IF cardinality(starved) > 0 THEN
                    PERFORM set_config('lock_timeout', '1000', true);
                    FOREACH p IN ARRAY starved LOOP
                        BEGIN
                            PERFORM pg_advisory_xact_lock(lock_space, p);
                        EXCEPTION WHEN lock_not_available THEN
                            NULL;
                        END;
                    END LOOP;
                END IF;
                SELECT coalesce(array_agg(w), '{}') INTO clear
                FROM unnest(wanted) AS w
                WHERE pg_try_advisory_xact_lock(lock_space, w);
                -- One marker row (sequence -1) per partition still locked, so the caller knows.
                RETURN QUERY
                    SELECT (-1)::bigint, '00000000-0000-0000-0000-000000000000'::uuid, ''::text, NULL::text, NULL::text,
                           ''::bytea, ''::bytea, w, 'epoch'::timestamptz, 'epoch'::timestamptz, 0, NULL::text, 0::smallint,
                           NULL::timestamptz
                    FROM unnest(wanted) AS w WHERE w <> ALL(clear);
                IF cardinality(clear) = 0 THEN
                    RETURN;
                END IF;
                RETURN QUERY
                    SELECT (w.m).* FROM (
                        SELECT c.m, c.size, sum(c.size) OVER (ORDER BY c.seq) AS running FROM (
                            SELECT m, m.sequence AS seq, octet_length(m.payload)::bigint AS size
                            FROM \(names.messages) AS m
                            WHERE m.state = 0 AND m.available_at <= due AND m.partition = ANY(clear)
                              AND m.sequence <> ALL(skipped)
                              AND NOT EXISTS (
                                  SELECT 1 FROM \(names.messages) AS e
                                  WHERE e.state = 0 AND e.attempts > 0 AND e.partition = m.partition
                                    AND e.message_key = m.message_key AND e.sequence < m.sequence AND e.available_at > due)
                            ORDER BY m.sequence
                            LIMIT max_rows) AS c) AS w
                    WHERE w.running - w.size < max_bytes;
            END
            $claim$
            """)
    }
}
