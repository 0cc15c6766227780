import OutboxTesting
import Testing

@Suite("SQLite conformance")
struct SQLiteConformanceTests {
    @Test(arguments: OutboxStoreConformance.Check.forSingleWriterStores)
    func conformance(_ check: OutboxStoreConformance.Check) async throws {
        try await OutboxStoreConformance(harness: SQLiteHarness()).run(check)
    }
}
