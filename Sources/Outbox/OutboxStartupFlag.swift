import Synchronization

/// Set once a server listens: tells a failure to start (a sentence for the user) from a failure later.
package final class OutboxStartupFlag: Sendable {
    private let value = Atomic<Bool>(false)

    package init() {}

    package func set() { value.store(true, ordering: .releasing) }

    package var isSet: Bool { value.load(ordering: .acquiring) }
}
