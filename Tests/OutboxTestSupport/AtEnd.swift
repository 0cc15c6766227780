import Synchronization
public import Testing

/// Runs the clean-up a test queued with ``atEnd(_:)`` once the test is over, awaited, last queued
/// first, whether the test passed, failed or threw.
///
/// Swift's `defer` cannot await, and a `Task` started in it is not awaited: the next test could
/// start while the last one's connections were still closing, and the last test's clean-up could
/// be cut off when the process exits. Put `.closesAtEnd` on the suite.
public struct ClosesAtEnd: TestTrait, SuiteTrait, TestScoping {
    public init() {}

    public var isRecursive: Bool { true }

    public func provideScope(for test: Test, testCase: Test.Case?,
                             performing function: @Sendable () async throws -> Void) async throws {
        // Suites get no scope of their own: each test case gets one.
        guard testCase != nil else { return try await function() }
        let queue = AtEndQueue()
        do {
            try await AtEndQueue.$current.withValue(queue) { try await function() }
        } catch {
            await queue.run()
            throw error
        }
        await queue.run()
    }
}

extension Trait where Self == ClosesAtEnd {
    /// Awaits what each test queued with ``atEnd(_:)`` when the test is over.
    public static var closesAtEnd: Self { Self() }
}

/// Queues `work` to run, awaited, when the current test is over (see ``ClosesAtEnd``); use it
/// where `defer` would need to await, e.g. `atEnd { try? await subject.close() }`.
public func atEnd(_ work: @escaping @Sendable () async -> Void) {
    guard let queue = AtEndQueue.current else {
        Issue.record("atEnd needs the .closesAtEnd trait on the test's suite; without it nothing would close.")
        return
    }
    queue.add(work)
}

final class AtEndQueue: Sendable {
    @TaskLocal static var current: AtEndQueue?
    private let work = Mutex<[@Sendable () async -> Void]>([])

    func add(_ item: @escaping @Sendable () async -> Void) {
        work.withLock { $0.append(item) }
    }

    func run() async {
        let queued = work.withLock { queued in
            defer { queued = [] }
            return queued
        }
        for item in queued.reversed() { await item() }
    }
}
