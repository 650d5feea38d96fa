import Foundation
import StandbyPrimitives

/// Whether a hub could take traffic now: its replicated storage, its container images, the
/// compute quota for its scale-up and its endpoints (as AWS ARC's readiness checks: advisory and
/// per resource). Reported by the application layer; a check not heard of recently is `unknown`.
public enum ReadinessCheck: String, Sendable, Hashable, Codable, CaseIterable {
    /// The storage account is geo-redundant and its last sync is within the allowed lag.
    case storageReplication = "storage_replication"
    /// The container registry is replicated to the hub's region and the replication succeeded.
    case registryReplication = "registry_replication"
    /// The region has the compute quota for the hub's planned scale-up.
    case computeQuota = "compute_quota"
    /// The hub's online endpoints and deployments exist.
    case endpoints
}

public enum ReadinessStatus: String, Sendable, Hashable, Codable, CaseIterable {
    case ready
    case notReady = "not_ready"
    case unknown
}

/// The latest report of one check of one hub.
public struct ReadinessObservation: Sendable, Hashable, Codable {
    public var status: ReadinessStatus
    public var detail: String?
    public var observedAt: Date
    public var reportId: String

    public init(status: ReadinessStatus, detail: String?, observedAt: Date, reportId: String) {
        self.status = status
        self.detail = detail
        self.observedAt = observedAt
        self.reportId = reportId
    }

    /// As it stands at `now`: an observation older than `staleAfter` says nothing any more.
    public func status(now: Date, staleAfter: TimeInterval) -> ReadinessStatus {
        now.timeIntervalSince(observedAt) > staleAfter ? .unknown : status
    }
}

/// What the engine knows of a target's readiness when it decides.
public struct ReadinessSummary: Sendable, Hashable {
    /// Each check's status now; a check never reported is absent (unknown).
    public var checks: [ReadinessCheck: ReadinessStatus]

    public init(checks: [ReadinessCheck: ReadinessStatus] = [:]) {
        self.checks = checks
    }

    public init(_ observations: [String: ReadinessObservation], now: Date, staleAfter: TimeInterval) {
        var checks: [ReadinessCheck: ReadinessStatus] = [:]
        for (name, observation) in observations {
            if let check = ReadinessCheck(rawValue: name) {
                checks[check] = observation.status(now: now, staleAfter: staleAfter)
            }
        }
        self.init(checks: checks)
    }

    public var notReady: [ReadinessCheck] {
        checks.filter { $0.value == .notReady }.keys.sorted { $0.rawValue < $1.rawValue }
    }
    /// The checks with no current answer: never reported, stale, or reported unknown.
    public var unknown: [ReadinessCheck] {
        ReadinessCheck.allCases.filter { (checks[$0] ?? .unknown) == .unknown }
    }
    /// `ready` only when every check is.
    public var overall: ReadinessStatus {
        if !notReady.isEmpty { return .notReady }
        return unknown.isEmpty ? .ready : .unknown
    }

    /// "storage_replication not_ready, compute_quota unknown", for reasons.
    public var description: String {
        switch overall {
        case .ready: return "ready"
        case .notReady, .unknown:
            return (notReady.map { "\($0.rawValue) not_ready" } + unknown.map { "\($0.rawValue) unknown" })
                .joined(separator: ", ")
        }
    }
}
