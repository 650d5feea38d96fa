import Foundation
import Synchronization

/// The outcome of the latest write that reached the database, and when. Readiness reuses it while it is
/// fresh, so that a probe every second costs no fsync, yet a storage failure turns the process
/// unready at once (a failed write records it) and at the latest `freshness` after it began.
public final class StorageHealth: Sendable {
    public enum Outcome: Sendable, Equatable {
        case success
        case failure(String)
    }

    /// How long an outcome stands for the storage's state (the bound the readiness cache keeps).
    public static let freshness: Duration = .seconds(2)

    private let latest = Mutex<(outcome: Outcome, at: ContinuousClock.Instant)?>(nil)

    public init() {}

    public func record(_ outcome: Outcome) {
        latest.withLock { $0 = (outcome, ContinuousClock.now) }
    }

    /// The latest outcome when it is fresh enough to stand for the storage's state now.
    public func recent() -> Outcome? {
        latest.withLock { state in
            guard let state, ContinuousClock.now - state.at < Self.freshness else { return nil }
            return state.outcome
        }
    }
}
