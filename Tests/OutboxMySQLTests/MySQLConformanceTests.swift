import OutboxTestSupport
import OutboxTesting
import Testing

@Suite("MySQL/MariaDB conformance", .enabled(if: TestServer.mariadb.shouldRun, "set OUTBOX_MYSQL_URL (scripts/test.sh does)"))
struct MySQLConformanceTests {
    @Test(arguments: OutboxStoreConformance.Check.allCases)
    func conformance(_ check: OutboxStoreConformance.Check) async throws {
        try await OutboxStoreConformance(harness: MySQLHarness()).run(check)
    }
}
