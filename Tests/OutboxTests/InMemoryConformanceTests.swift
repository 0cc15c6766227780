import Outbox
import OutboxTesting
import Testing

@Suite("In-memory conformance")
struct InMemoryConformanceTests {
    @Test(arguments: OutboxStoreConformance.Check.forSingleWriterStores)
    func conformance(_ check: OutboxStoreConformance.Check) async throws {
        try await OutboxStoreConformance(harness: InMemoryStoreHarness()).run(check)
    }
}
