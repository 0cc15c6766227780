/// How failed messages are retried before they are dead-lettered.
public struct OutboxRetryPolicy: Sendable, Hashable {
    /// Attempts after which a message that keeps failing retriably is dead-lettered. Default 10.
    public var maximumAttempts: Int
    /// Attempts after which a message the publisher rejects as non-retriable is dead-lettered.
    /// Default 3: a permanent rejection can still be a passing misconfiguration (an ACL, a topic
    /// not yet created), so it gets a few spaced tries, but fewer than a transient error.
    public var maximumPermanentFailureAttempts: Int
    /// Delay before the second attempt. Default 100 ms.
    public var initialBackoff: Duration
    /// Upper bound of the delay. Default 60 s.
    public var maximumBackoff: Duration
    /// Growth factor per attempt. Default 2.
    public var multiplier: Double
    /// Fraction of the delay randomised (0…1), so failed messages do not return in lockstep. Default 0.2.
    public var jitter: Double

    /// Creates a policy; every argument has a default.
    public init(
        maximumAttempts: Int = 10,
        maximumPermanentFailureAttempts: Int = 3,
        initialBackoff: Duration = .milliseconds(100),
        maximumBackoff: Duration = .seconds(60),
        multiplier: Double = 2,
        jitter: Double = 0.2
    ) {
        self.maximumAttempts = max(1, maximumAttempts)
        self.maximumPermanentFailureAttempts = max(1, min(maximumPermanentFailureAttempts, maximumAttempts))
        self.initialBackoff = initialBackoff
        self.maximumBackoff = maximumBackoff
        self.multiplier = max(1, multiplier)
        self.jitter = min(1, max(0, jitter))
    }

    /// The delay before the next attempt, after `attempts` failed ones (1 or more).
    public func backoff(afterAttempts attempts: Int) -> Duration {
        let base = initialBackoff.timeInterval * pow(multiplier, Double(max(0, attempts - 1)))
        let capped = min(base, maximumBackoff.timeInterval)
        let spread = capped * jitter
        let delay = max(0, capped - spread + Double.random(in: 0...max(spread * 2, 0)))
        return .milliseconds(Int64((delay * 1000).rounded()))
    }

    /// Whether a message that has now failed `attempts` times should be dead-lettered.
    public func shouldDeadLetter(attempts: Int, isRetriable: Bool) -> Bool {
        attempts >= (isRetriable ? maximumAttempts : maximumPermanentFailureAttempts)
    }
}

private func pow(_ base: Double, _ exponent: Double) -> Double {
    var result = 1.0
    var remaining = Int(exponent)
    while remaining > 0 && result < 1e12 {
        result *= base
        remaining -= 1
    }
    return result
}
