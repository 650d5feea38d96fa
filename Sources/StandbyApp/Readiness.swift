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

extension ControlSession {
    /// Stores a readiness report raw, then, when it is the newest of its check, makes it the
    /// hub's readiness (a change of status goes in the history).
    mutating func record(_ report: ReadinessReportInput, actor: String, in transaction: any ControlTransaction) throws
        -> ReadinessReceipt
    {
        let storedId = try transaction.storeReadinessReport(report, receivedAt: now, actor: actor)
        let receipt = ReadinessReceipt(
            id: storedId, hub: report.hubId, check: report.check.rawValue,
            observedAt: Timestamp.format(report.observedAt), status: storedId == report.id ? "accepted" : "duplicate")
        guard storedId == report.id else { return receipt }
        let hub = HubReference(deploymentId: report.deploymentId, hubId: report.hubId)
        guard topology.deployment(hub.deploymentId) != nil else { return receipt }
        var state = try hubState(hub)
        var readiness = state.readiness ?? [:]
        let previous = readiness[report.check.rawValue]
        guard previous.map({ $0.observedAt <= report.observedAt }) ?? true else { return receipt }
        readiness[report.check.rawValue] = ReadinessObservation(
            status: report.status, detail: report.detail, observedAt: report.observedAt, reportId: report.id)
        state.readiness = readiness
        storeReadiness(state, for: hub)
        if previous?.status != report.status {
            appendEvent(
                EventDraft(
                    type: "readiness.changed", at: now, deploymentId: hub.deploymentId, hub: hub.hubId, actor: actor,
                    data: .object([
                        "check": .string(report.check.rawValue), "from": .optional(previous?.status.rawValue),
                        "to": .string(report.status.rawValue), "detail": .optional(report.detail),
                        "reportId": .string(report.id), "observedAt": .string(Timestamp.format(report.observedAt)),
                    ])))
        }
        return receipt
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
