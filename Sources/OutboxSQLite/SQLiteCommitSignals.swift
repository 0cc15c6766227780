import Outbox
import Synchronization

/// One commit signal per database file in this process, so every store instance on the same file
/// (the application's and the relay's) shares it: an enqueue wakes the relay at commit.
enum SQLiteCommitSignals {
    private static let signals = Mutex<[String: OutboxSignal]>([:])

    static func signal(for path: String) -> OutboxSignal {
        signals.withLock { signals in
            if let signal = signals[path] { return signal }
            let signal = OutboxSignal()
            signals[path] = signal
            return signal
        }
    }
}
