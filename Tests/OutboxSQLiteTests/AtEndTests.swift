import OutboxTestSupport
import Synchronization
import Testing

/// The clean-up that server suites queue with `atEnd` (test support, checked here because this
/// target needs no server).
@Suite("Clean-up at the end of a test")
struct AtEndTests {
    struct Failure: Error {}

    /// Queued work waits for the test, runs last queued first, and runs when the test throws.
    @Test func cleanUpRunsAfterTheTestInReverseEvenWhenItThrows() async throws {
        let log = Mutex<[String]>([])
        await #expect(throws: Failure.self) {
            try await ClosesAtEnd().provideScope(for: Test.current!, testCase: Test.Case.current) {
                atEnd { log.withLock { $0.append("opened first") } }
                atEnd {
                    try? await Task.sleep(for: .milliseconds(20))
                    log.withLock { $0.append("opened second") }
                }
                #expect(log.withLock { $0 }.isEmpty, "nothing runs before the test is over")
                throw Failure()
            }
        }
        #expect(log.withLock { $0 } == ["opened second", "opened first"])
    }

    /// Outside a suite with `.closesAtEnd` nothing would run the work: that is an issue, not silence.
    @Test func withoutTheTraitQueuingIsAnIssue() {
        withKnownIssue { atEnd {} }
    }
}
