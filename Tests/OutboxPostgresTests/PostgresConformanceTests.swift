import OutboxTestSupport
import OutboxTesting
import Testing

@Suite("PostgreSQL conformance", .enabled(if: TestServer.postgres.shouldRun, "set OUTBOX_POSTGRES_URL (scripts/test.sh does)"))
struct PostgresConformanceTests {
    @Test(arguments: OutboxStoreConformance.Check.allCases)
    func conformance(_ check: OutboxStoreConformance.Check) async throws {
        try await OutboxStoreConformance(harness: PostgresHarness()).run(check)
    }
}
