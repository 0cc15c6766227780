import Synchronization

/// Set once a server listens: tells a failure to start (a sentence for the user) from a failure later.
final class OutboxStartupFlag: Sendable {
    private let value = Atomic<Bool>(false)

    init() {}

    func set() { value.store(true, ordering: .releasing) }

    var isSet: Bool { value.load(ordering: .acquiring) }
}
