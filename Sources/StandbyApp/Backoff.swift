import Foundation

/// Exponential backoff with jitter, for everything Standby retries (pushed commands, resubmissions):
/// `base × 2^(attempt − 1)`, at most `maximum`, times a random factor in `1 ± jitter`, so that
/// failing peers spread out instead of retrying in step.
public struct Backoff: Sendable, Hashable {
    public var base: TimeInterval
    public var maximum: TimeInterval
    public var jitter: Double

    public init(base: TimeInterval, maximum: TimeInterval, jitter: Double = 0.2) {
        self.base = base
        self.maximum = maximum
        self.jitter = jitter
    }

    /// The wait after attempt number `attempt` (1 for the first) failed; `random` is in 0...1.
    public func delay(afterAttempt attempt: Int, random: Double) -> TimeInterval {
        let exponential = min(maximum, base * pow(2, Double(max(0, attempt - 1))))
        return exponential * (1 + jitter * (2 * random - 1))
    }
}
