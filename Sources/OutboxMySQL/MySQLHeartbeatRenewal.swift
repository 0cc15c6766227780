import Foundation
import Outbox

/// The usual heartbeat in one statement: a stored procedure (schema version 6) that renews the
/// relay's registration and leases and reads what the lease planner would need to change anything
/// else, in one transaction of its own.
///
/// Why: a heartbeat that changes nothing but expiries was six statements (`START TRANSACTION`, the
/// leases `FOR UPDATE`, the registrations, the renewal, the registration, `COMMIT`), each a round
/// trip, every 2.5 s of every relay, idle or not. When the procedure's answer shows that the
/// planner would change more (a free or lapsed partition while below the fair share, a lapsed
/// registration to remove, or the relay id held by another run), the full, serialised heartbeat
/// runs instead, so the planner stays the one place that moves leases.
enum MySQLHeartbeatRenewal {
    /// The procedure's name: `<prefix>_renew`.
    static func procedure(_ names: MySQLOutboxNames) -> String { names.table("renew") }

    /// Creates the procedure (schema version 6). `SQL SECURITY INVOKER`: it runs with the
    /// privileges of the relay's user, not of whoever ran the migration. Relay ids are compared in
    /// the registration column's binary collation, as everywhere else.
    static func createSQL(_ names: MySQLOutboxNames) -> String {
        """
            CREATE PROCEDURE \(procedure(names))(
                IN relay VARCHAR(255) CHARACTER SET utf8mb4, IN expiry BIGINT, IN relay_in_flight INT, IN now_us BIGINT,
                IN run VARCHAR(64) CHARACTER SET ascii, IN relay_published BIGINT)
            MODIFIES SQL DATA SQL SECURITY INVOKER
            BEGIN
                DECLARE registered INT DEFAULT 0;
                DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK; RESIGNAL; END;
                SET TRANSACTION ISOLATION LEVEL READ COMMITTED;
                START TRANSACTION;
                SELECT COUNT(*) INTO registered FROM \(names.relays)
                    WHERE relay_id = relay COLLATE utf8mb4_bin AND instance = run FOR UPDATE;
                IF registered > 0 THEN
                    UPDATE \(names.relays) SET expires_at = expiry, in_flight = relay_in_flight, published = relay_published
                        WHERE relay_id = relay COLLATE utf8mb4_bin;
                    UPDATE \(names.leases) SET expires_at = expiry WHERE owner = relay COLLATE utf8mb4_bin;
                END IF;
                SELECT registered,
                       (SELECT JSON_ARRAYAGG(partition_no) FROM \(names.leases) WHERE owner = relay COLLATE utf8mb4_bin),
                       (SELECT JSON_ARRAYAGG(relay_id) FROM \(names.relays)
                            WHERE relay_id <> relay COLLATE utf8mb4_bin AND expires_at > now_us),
                       (SELECT COUNT(*) FROM \(names.relays) WHERE relay_id <> relay COLLATE utf8mb4_bin AND expires_at <= now_us),
                       (SELECT COUNT(*) FROM \(names.leases)
                            WHERE NOT (owner <=> relay COLLATE utf8mb4_bin) AND (owner IS NULL OR expires_at <= now_us)),
                       (SELECT COUNT(*) FROM \(names.leases));
                COMMIT;
            END
            """
    }

    /// Renews through the procedure and answers the grant the full heartbeat would give, or `nil`
    /// when the full heartbeat must decide (see ``OutboxLeasePlanner/grantIfNothingChanges(relayID:owned:otherLiveRelays:lapsedRelays:freePartitions:partitionCount:)``).
    static func renew(_ request: OutboxHeartbeat, names: MySQLOutboxNames, pool: MySQLConnectionPool) async throws -> OutboxLeaseGrant? {
        let expiry = request.now.addingTimeInterval(request.leaseDuration.timeInterval)
        let row = try await pool.query("CALL \(procedure(names))(?, ?, ?, ?, ?, ?)", [
            .text(request.relayID), .integer(MySQLTime.microseconds(expiry)), .int(Int32(clamping: request.inFlight)),
            .integer(MySQLTime.microseconds(request.now)), .text(request.instanceID), .integer(Int64(clamping: request.published)),
        ]).rows.first
        // Another run holds this relay id, or it is not registered yet: the full heartbeat decides.
        guard let row, row[0].int64 == 1 else { return nil }
        let owned: [Int] = try jsonList(row[1])
        let others: [String] = try jsonList(row[2])
        return OutboxLeasePlanner.grantIfNothingChanges(
            relayID: request.relayID, owned: Set(owned), otherLiveRelays: others, lapsedRelays: Int(row[3].int64 ?? 0),
            freePartitions: Int(row[4].int64 ?? 0), partitionCount: Int(row[5].int64 ?? 0))
    }

    /// A `JSON_ARRAYAGG` column: `NULL` when nothing was aggregated.
    private static func jsonList<Element: Decodable>(_ value: MySQLValue) throws -> [Element] {
        let bytes: [UInt8]
        switch value {
        case .null: return []
        case .text(let text): bytes = Array(text.utf8)
        case .bytes(let raw): bytes = raw
        case .integer: throw MySQLError.usage("The heartbeat procedure answered a list that is not JSON text.", operation: "heartbeat")
        }
        return try JSONDecoder().decode([Element].self, from: Data(bytes))
    }
}
