import Foundation
import StandbyCore
import StandbyPrimitives
import Synchronization

/// A health report as the probe sends it, numbered so that a batch in flight can be removed exactly.
public struct PendingReport: Sendable, Hashable {
    public var number: UInt64
    public var result: CheckResult

    /// The body of one report of `POST /v1/health-reports`.
    func json(source: String) -> JSONValue {
        var object: [String: JSONValue] = [
            "hub": .string(result.hub), "source": .string(source),
            "outcome": .string(result.success ? "success" : "failure"),
            "observedAt": .string(Timestamp.format(result.observedAt)),
            "latencyMs": .number((result.latencyMs * 1000).rounded() / 1000), "detail": .string(result.detail),
        ]
        if let code = result.statusCode { object["statusCode"] = .number(Double(code)) }
        return .object(object)
    }
}

/// The reports not yet delivered, oldest `observedAt` first, at most `capacity` of them: when no
/// Standby answers, the oldest are dropped first (and counted), since the newest say more about
/// the hub now. Standby places reports by `observedAt`, so delivering them late changes nothing.
public final class ReportBuffer: Sendable {
    private struct State {
        var reports: [PendingReport] = []
        var nextNumber: UInt64 = 0
        var dropped = 0
    }

    public let capacity: Int
    private let state = Mutex(State())

    public init(capacity: Int) {
        self.capacity = max(1, capacity)
    }

    public var count: Int { state.withLock { $0.reports.count } }
    public var dropped: Int { state.withLock { $0.dropped } }

    /// Adds a result in `observedAt` order (a slow check may finish after a later one started).
    @discardableResult
    public func add(_ result: CheckResult) -> Int {
        state.withLock { state in
            let report = PendingReport(number: state.nextNumber, result: result)
            state.nextNumber += 1
            var index = state.reports.endIndex
            while index > state.reports.startIndex, state.reports[index - 1].result.observedAt > result.observedAt {
                index -= 1
            }
            state.reports.insert(report, at: index)
            var dropped = 0
            while state.reports.count > capacity {
                state.reports.removeFirst()
                dropped += 1
            }
            state.dropped += dropped
            return dropped
        }
    }

    /// The oldest `limit` reports, left in the buffer until `remove` says they were delivered.
    public func oldest(_ limit: Int) -> [PendingReport] {
        state.withLock { Array($0.reports.prefix(limit)) }
    }

    public func remove(_ delivered: [PendingReport]) {
        let numbers = Set(delivered.map(\.number))
        state.withLock { $0.reports.removeAll { numbers.contains($0.number) } }
    }
}
