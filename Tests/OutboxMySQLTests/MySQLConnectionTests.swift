import Foundation
import Outbox
import OutboxMySQL
import OutboxTestSupport
import OutboxTesting
import Testing

/// The application-facing connection API on its own: bound values, transactions, errors.
@Suite("MySQL/MariaDB connection", .enabled(if: TestServer.mariadb.shouldRun, "set OUTBOX_MYSQL_URL (scripts/test.sh does)"), .closesAtEnd)
struct MySQLConnectionTests {
    @Test func transactionCommitsOrRollsBack() async throws {
        let pool = MySQLConnectionPool(configuration: try TestServer.requireConfiguration(), maximumConnections: 2)
        let table = "`c_\(UUID().uuidString.prefix(8).lowercased())`"
        try await pool.query("CREATE TABLE \(table) (id BIGINT PRIMARY KEY, note VARCHAR(50) NOT NULL)")
        atEnd { _ = try? await pool.query("DROP TABLE \(table)"); await pool.close() }

        _ = try await pool.withTransaction { connection in
            try await connection.query("INSERT INTO \(table) VALUES (?, ?)", [1, "committed"])
        }
        struct Abort: Error {}
        await #expect(throws: Abort.self) {
            try await pool.withTransaction { connection in
                try await connection.query("INSERT INTO \(table) VALUES (?, ?)", [2, "rolled back"])
                throw Abort()
            }
        }
        let rows = try await pool.query("SELECT id, note FROM \(table) ORDER BY id").rows
        #expect(rows == [MySQLRow(values: [1, "committed"])])
        #expect(try await pool.query("SELECT ? IS NULL, ?", [nil, .bytes([0, 1, 255])]).rows[0].values == [1, .bytes([0, 1, 255])])
    }

    @Test func serverErrorsCarryTheirCodes() async throws {
        let pool = MySQLConnectionPool(configuration: try TestServer.requireConfiguration(), maximumConnections: 1)
        atEnd { await pool.close() }
        do {
            try await pool.query("SELECT * FROM no_such_table_here")
            Issue.record("a query on a missing table succeeded")
        } catch let error as MySQLError {
            #expect(error.code == 1146)
            #expect(error.sqlState == "42S02")
        }
        do {
            try await pool.query("SELECT ?", [])
            Issue.record("a placeholder without a value was accepted")
        } catch let error as MySQLError {
            #expect(error.description.contains("1 placeholders but 0 values"))
        }
        // The pool's only connection is still usable after both errors.
        #expect(try await pool.query("SELECT 1").rows[0][0].int64 == 1)
    }

    @Test func wrongPasswordAndClosedPortAreNamed() async throws {
        var configuration = try TestServer.requireConfiguration()
        configuration.password = "not-the-password-\(UUID())"
        do {
            _ = try await MySQLConnection.connect(configuration)
            Issue.record("a wrong password connected")
        } catch let error as MySQLError {
            #expect(error.code == 1045)
            #expect(!error.description.contains(configuration.password!), "the password is not in the error")
        }
        var closed = try TestServer.requireConfiguration()
        closed.port = 1
        do {
            _ = try await MySQLConnection.connect(closed)
            Issue.record("a closed port connected")
        } catch let error as MySQLError {
            #expect(error.isConnectionLost, "\(error)")
        }
    }

    @Test func urlsAreParsedWithoutLeakingThePassword() throws {
        let configuration = try MySQLConnectionURL("mysql://app:s%40cret@db.example:3307/shop?ssl-mode=verify_identity&ssl-ca=/etc/ca.pem").configuration
        #expect(configuration.host == "db.example" && configuration.port == 3307 && configuration.database == "shop")
        #expect(configuration.password == "s@cret")
        #expect(configuration.tls == .init(mode: .verifyIdentity, certificateAuthorityFile: "/etc/ca.pem"))
        #expect(!configuration.description.contains("cret"))
        for bad in ["", "mysql://", "postgres://a@b/c", "mysql://user@host", "mysql://host/db", "mysql://u@h/db?ssl-mode=sometimes",
                    "mysql://u@h/db?evil=1", "mysql://u:pw@h:99999/db"] {
            #expect(throws: OutboxError.self, "\(bad)") { _ = try MySQLConnectionURL(bad).configuration }
        }
    }

    /// A user and password are percent-decoded exactly once: a password with a literal "%41"
    /// (written %2541 in the URL) logs in, and one with "@" (%40) too.
    @Test func percentEncodedPasswordsLogIn() async throws {
        let base = try TestServer.requireConfiguration()
        let admin = MySQLConnectionPool(configuration: base, maximumConnections: 1)
        atEnd { await admin.close() }
        let user = "pct_\(UUID().uuidString.prefix(8).lowercased())"
        // The name is generated here (letters and digits): account names cannot be bound.
        try await admin.query("CREATE USER '\(user)'@'%' IDENTIFIED BY 'p%41ss@x'")
        try await admin.query("GRANT ALL ON `\(base.database)`.* TO '\(user)'@'%'")
        let configuration = try MySQLConnectionURL("mysql://\(user):p%2541ss%40x@\(base.host):\(base.port)/\(base.database)").configuration
        #expect(configuration.password == "p%41ss@x")
        let pool = MySQLConnectionPool(configuration: configuration, maximumConnections: 1)
        let answer = try await pool.query("SELECT CURRENT_USER()").rows.first?[0].string
        await pool.close()
        try await admin.query("DROP USER '\(user)'@'%'")
        #expect(answer?.hasPrefix(user) == true)
    }

    /// The pool hands each connection to one task at a time and opens no more than its maximum.
    @Test func poolBoundsConnections() async throws {
        let pool = MySQLConnectionPool(configuration: try TestServer.requireConfiguration(), maximumConnections: 3)
        atEnd { await pool.close() }
        let ids = try await withThrowingTaskGroup(of: Int64.self) { group in
            for _ in 0..<30 {
                group.addTask { try await pool.query("SELECT CONNECTION_ID() FROM (SELECT SLEEP(0.01)) AS s").rows[0][0].int64! }
            }
            return try await group.reduce(into: Set<Int64>()) { $0.insert($1) }
        }
        #expect(ids.count <= 3)
    }
}
