import Synchronization

/// What an inbox harness keeps beside each store it made (the client, the namespace, the
/// services running), found again from the store the suite hands back.
public final class StoreSubjects<Subject: Sendable>: Sendable {
    private let subjects = Mutex<[ObjectIdentifier: Subject]>([:])

    public init() {}

    /// Keeps `subject` for `store`.
    public func keep(_ subject: Subject, for store: AnyObject) {
        subjects.withLock { $0[ObjectIdentifier(store)] = subject }
    }

    /// The subject kept for `store`.
    public func subject(for store: AnyObject) -> Subject {
        subjects.withLock { $0[ObjectIdentifier(store)]! }
    }

    /// Removes and returns the subject kept for `store`.
    public func take(for store: AnyObject) -> Subject? {
        subjects.withLock { $0.removeValue(forKey: ObjectIdentifier(store)) }
    }
}
