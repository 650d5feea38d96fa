import Foundation
import StandbyCore
import StandbyPrimitives

/// One readiness report as `POST /v1/readiness-reports` takes it, validated.
public struct ReadinessReportInput: Sendable, Hashable {
    public var id: String
    public var deploymentId: String
    public var hubId: String
    public var check: ReadinessCheck
    public var status: ReadinessStatus
    public var detail: String?
    public var observedAt: Date

    public init(
        id: String, deploymentId: String, hubId: String, check: ReadinessCheck, status: ReadinessStatus,
        detail: String?, observedAt: Date
    ) {
        self.id = id
        self.deploymentId = deploymentId
        self.hubId = hubId
        self.check = check
        self.status = status
        self.detail = detail
        self.observedAt = observedAt
    }
}

/// A readiness report's receipt: `accepted`, or `duplicate` when (hub, check, observedAt) was
/// already stored.
public struct ReadinessReceipt: Sendable, Hashable, Encodable {
    public var id: String
    public var hub: String
    public var check: String
    public var observedAt: String
    public var status: String
}

/// One check of a hub as the API shows it.
public struct ReadinessView: Sendable, Hashable, Codable {
    public var check: String
    public var status: ReadinessStatus
    public var detail: String?
    public var observedAt: String?

    /// Every check of `state`, in the order `ReadinessCheck` lists them; one never reported is unknown.
    public static func checks(of state: HubHealthState, policy: Policy, now: Date) -> [ReadinessView] {
        ReadinessCheck.allCases.map { check in
            guard let observation = state.readiness?[check.rawValue] else {
                return ReadinessView(check: check.rawValue, status: .unknown, detail: "never reported", observedAt: nil)
            }
            let status = observation.status(now: now, staleAfter: policy.readinessStaleAfter)
            return ReadinessView(
                check: check.rawValue, status: status,
                detail: status == .unknown && observation.status != .unknown
                    ? "last report older than \(Int(policy.readinessStaleAfter))s" : observation.detail,
                observedAt: Timestamp.format(observation.observedAt))
        }
    }
}

extension ControlPlane {
    /// Records a validated batch of readiness reports in one unit of work, and decides (a held
    /// failover may now go ahead). Idempotent on (hub, check, observedAt).
    public func recordReadiness(_ reports: [ReadinessReportInput], actor: String, now: Date) async throws
        -> [ReadinessReceipt]
    {
        try await store.write { transaction in
            var session = self.session(transaction, now: now)
            let receipts = try reports.map { try session.record($0, actor: actor, in: transaction) }
            try session.decideAndSave(in: transaction)
            return receipts
        }
    }
}

/// A batch of readiness reports as a reporter posts it: the shape and the field checks of
/// `HealthReportBatch`, validated whole before anything is stored.
public enum ReadinessReportBatch {
    public static let maximumDetail = 2000

    public static func validate(_ document: JSONValue, topology: Topology, now: Date, ids: any IDSource)
        throws(HealthReportBatch.Rejection) -> [ReadinessReportInput]
    {
        var problems: [HealthReportBatch.FieldProblem] = []
        var reports: [ReadinessReportInput] = []
        for (prefix, item) in try HealthReportBatch.items(document) {
            var fields = HealthReportBatch.Fields(prefix: prefix, item: item)
            defer { problems += fields.problems }
            guard fields.isObject else { continue }
            let hub = fields.hub(in: topology)
            let check = fields.choice("check", as: ReadinessCheck.self)
            let status = fields.choice("status", as: ReadinessStatus.self)
            let detail = fields.text("detail", required: false, maximum: Self.maximumDetail)
            let observedAt = fields.observedAt(now: now)
            if let (deployment, hubDefinition) = hub, let check, let status, let observedAt {
                reports.append(
                    ReadinessReportInput(
                        id: ids.next(), deploymentId: deployment.id, hubId: hubDefinition.id, check: check,
                        status: status, detail: detail, observedAt: observedAt))
            }
        }
        guard problems.isEmpty else { throw .invalidReports(problems) }
        return reports
    }
}
