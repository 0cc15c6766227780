import Foundation
import Outbox
@testable import OutboxMySQL
import OutboxTestSupport
import OutboxTesting
import Testing

/// The usual heartbeat is one `CALL` of the schema's renewal procedure; the full, serialised
/// heartbeat runs only when leases must move.
@Suite("MySQL heartbeat renewal", .serialized, .closesAtEnd)
struct MySQLHeartbeatRenewalTests {
    /// Before schema version 6 every heartbeat was six statements, idle or not.
    @Test func aHeartbeatThatChangesNothingIsOneStatementAndGrantsTheSame() async throws {
        let subject = try await MySQLStoreUnderTest(partitionCount: 8)
        atEnd { try? await subject.close() }
        let first = try await subject.mysql.heartbeat(OutboxHeartbeat(relayID: "relay-a", leaseDuration: .seconds(30), instanceID: "run-1"))
        #expect(first.owned == Set(0..<8))
        let before = subject.application.statementsSent
        let renewed = try await subject.mysql.heartbeat(OutboxHeartbeat(relayID: "relay-a", leaseDuration: .seconds(30), inFlight: 3,
                                                                         instanceID: "run-1", published: 42))
        #expect(subject.application.statementsSent - before == 1, "the renewal is one statement")
        #expect(renewed == first)
        let registration = try await subject.application.query(
            "SELECT in_flight, published, expires_at FROM `\(subject.prefix)_relays` WHERE relay_id = ?", [.text("relay-a")]).rows.first
        #expect(registration?[0].int64 == 3 && registration?[1].int64 == 42, "the registration carries the new figures")
        let expiries = try await subject.application.query("SELECT DISTINCT expires_at FROM `\(subject.prefix)_leases`").rows
        #expect(expiries.count == 1 && expiries.first?[0].int64 == registration?[2].int64, "every lease was renewed with the registration")
    }

    /// A second relay joins (its first heartbeat is the full one) and the first relay's next
    /// heartbeat, seeing it above its fair share, gives partitions up.
    @Test func aRelayAboveItsShareStillHandsPartitionsOver() async throws {
        let subject = try await MySQLStoreUnderTest(partitionCount: 8)
        atEnd { try? await subject.close() }
        _ = try await subject.mysql.heartbeat(OutboxHeartbeat(relayID: "relay-a", leaseDuration: .seconds(30), instanceID: "run-a"))
        let joined = try await subject.mysql.heartbeat(OutboxHeartbeat(relayID: "relay-b", leaseDuration: .seconds(30), instanceID: "run-b"))
        #expect(joined.owned.isEmpty && joined.liveRelays == 2, "every partition is still held by relay-a")
        let renewed = try await subject.mysql.heartbeat(OutboxHeartbeat(relayID: "relay-a", leaseDuration: .seconds(30), instanceID: "run-a"))
        #expect(renewed.owned.count == 8 && renewed.surplus.count == 4, "relay-a learns it holds four above its share: \(renewed)")
        let released = try await subject.mysql.heartbeat(OutboxHeartbeat(relayID: "relay-a", leaseDuration: .seconds(30), releasing: renewed.surplus,
                                                                          instanceID: "run-a"))
        #expect(released.owned.count == 4)
        let taken = try await subject.mysql.heartbeat(OutboxHeartbeat(relayID: "relay-b", leaseDuration: .seconds(30), instanceID: "run-b"))
        #expect(taken.owned == renewed.surplus, "relay-b takes the released partitions")
    }

    /// Relay ids travel back from the procedure as JSON: quotes, backslashes, commas, SQL and
    /// 4-byte UTF-8 come back as they were, so the fair share is computed over the right ids.
    @Test func hostileRelayIDsSurviveTheRenewal() async throws {
        let subject = try await MySQLStoreUnderTest(partitionCount: 8)
        atEnd { try? await subject.close() }
        let first = "relay \"one\", \\ '; DROP TABLE x; -- 😀"
        let second = "relay,two\\\"]𝄞"
        _ = try await subject.mysql.heartbeat(OutboxHeartbeat(relayID: first, leaseDuration: .seconds(30), instanceID: "run-1"))
        _ = try await subject.mysql.heartbeat(OutboxHeartbeat(relayID: second, leaseDuration: .seconds(30), instanceID: "run-2"))
        let full = try await subject.mysql.heartbeat(OutboxHeartbeat(relayID: first, leaseDuration: .seconds(30), releasing: [4, 5, 6, 7],
                                                                      instanceID: "run-1"))
        _ = try await subject.mysql.heartbeat(OutboxHeartbeat(relayID: second, leaseDuration: .seconds(30), instanceID: "run-2"))
        let before = subject.application.statementsSent
        let renewed = try await subject.mysql.heartbeat(OutboxHeartbeat(relayID: first, leaseDuration: .seconds(30), instanceID: "run-1"))
        #expect(subject.application.statementsSent - before == 1, "the renewal answered: nothing to change")
        #expect(renewed.owned == full.owned && renewed.surplus.isEmpty && renewed.liveRelays == 2, "\(renewed)")
        let other = try await subject.mysql.heartbeat(OutboxHeartbeat(relayID: second, leaseDuration: .seconds(30), instanceID: "run-2"))
        #expect(other.owned == Set(4..<8) && other.liveRelays == 2, "\(other)")
    }

    /// A second run with a relay id another run holds is not renewed by the procedure: the full
    /// heartbeat decides, and grants it nothing while the first run's registration lives.
    @Test func anotherRunWithTheSameRelayIDIsNotRenewed() async throws {
        let subject = try await MySQLStoreUnderTest(partitionCount: 4)
        atEnd { try? await subject.close() }
        _ = try await subject.mysql.heartbeat(OutboxHeartbeat(relayID: "relay", leaseDuration: .seconds(30), instanceID: "run-1"))
        let twin = try await subject.mysql.heartbeat(OutboxHeartbeat(relayID: "relay", leaseDuration: .seconds(30), instanceID: "run-2"))
        #expect(twin.owned.isEmpty && twin.relayIDInUse)
        let owner = try await subject.application.query("SELECT instance FROM `\(subject.prefix)_relays` WHERE relay_id = ?", [.text("relay")])
        #expect(owner.rows.first?[0].string == "run-1")
    }

    /// A user that may not create routines cannot migrate, and one that may not run them cannot
    /// heartbeat: each gets one sentence naming the grant.
    @Test func missingRoutinePrivilegesAreNamed() async throws {
        let configuration = try TestServer.requireConfiguration()
        let admin = MySQLConnectionPool(configuration: configuration)
        atEnd { await admin.close() }
        let user = "outbox_limited_\(UUID().uuidString.prefix(6).lowercased())"
        let password = "limited-\(UUID().uuidString.prefix(8))"
        let database = configuration.database
        // Account statements take no placeholders; the name and password are the test's own letters.
        try await admin.query("CREATE USER '\(user)'@'%' IDENTIFIED BY '\(password)'")
        atEnd { _ = try? await admin.query("DROP USER '\(user)'@'%'") }
        try await admin.query("GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, INDEX, DROP ON `\(database)`.* TO '\(user)'@'%'")
        var limited = configuration
        limited.username = user
        limited.password = password
        let pool = MySQLConnectionPool(configuration: limited)
        atEnd { await pool.close() }
        let prefix = "t_\(UUID().uuidString.prefix(8).lowercased())"
        let store = try MySQLOutboxStore(pool: pool, configuration: .init(tablePrefix: prefix, partitionCount: 4), logger: .init(label: "test"))
        let refused = await #expect(throws: OutboxError.self) { try await store.migrate() }
        #expect(refused?.code == .invalidConfiguration)
        #expect(refused?.description.contains("CREATE ROUTINE") == true, "\(String(describing: refused))")
        #expect(refused?.description.contains(password) == false)

        // Migrated by a user who may; this one still may not EXECUTE.
        let owner = try MySQLOutboxStore(pool: admin, configuration: .init(tablePrefix: prefix, partitionCount: 4), logger: .init(label: "test"))
        try await owner.migrate()
        let notRun = await #expect(throws: OutboxError.self) {
            try await store.heartbeat(OutboxHeartbeat(relayID: "relay", leaseDuration: .seconds(30), instanceID: "run"))
        }
        #expect(notRun?.description.contains("EXECUTE") == true, "\(String(describing: notRun))")
        try await owner.dropSchema()
    }
}

/// An idle relay's claims cost one statement: after a claim that found nothing, the next first
/// asks whether its partitions have any pending row.
@Suite("MySQL idle claims", .closesAtEnd)
struct MySQLIdleClaimTests {
    @Test func aClaimAfterAnEmptyOneIsOneStatementUntilSomethingIsPending() async throws {
        let subject = try await MySQLStoreUnderTest(partitionCount: 4)
        atEnd { try? await subject.close() }
        _ = try await subject.mysql.heartbeat(OutboxHeartbeat(relayID: "relay", leaseDuration: .seconds(30)))
        #expect(try await subject.mysql.claim(partitions: Array(0..<4), limit: 10, now: Date()).isEmpty)
        let before = subject.application.statementsSent
        #expect(try await subject.mysql.claim(partitions: Array(0..<4), limit: 10, now: Date()).isEmpty)
        #expect(subject.application.statementsSent - before == 1, "an idle claim is one statement")

        let message = OutboxMessage(topic: "t", key: "k", text: "after a quiet spell")
        try await subject.enqueueCommitted([message])
        #expect(try await subject.mysql.claim(partitions: Array(0..<4), limit: 10, now: Date()).map(\.message.id) == [message.id])
    }
}
