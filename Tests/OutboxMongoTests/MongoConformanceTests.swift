import OutboxTestSupport
import OutboxTesting
import Testing

/// One check at a time: the test server (SecantusDB) is a single-threaded Python process, and
/// fourteen checks at once saturate it until wake-up bounds become noise.
@Suite("MongoDB conformance", .serialized, .enabled(if: TestServer.mongo.shouldRun, "set OUTBOX_MONGO_URL (scripts/test.sh does)"))
struct MongoConformanceTests {
    @Test(arguments: OutboxStoreConformance.Check.allCases)
    func conformance(_ check: OutboxStoreConformance.Check) async throws {
        try await OutboxStoreConformance(harness: MongoHarness()).run(check)
    }
}
