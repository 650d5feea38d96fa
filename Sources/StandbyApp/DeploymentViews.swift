import Foundation
import StandbyCore
import StandbyPrimitives

extension DeploymentView {
    /// A deployment as the API shows it now: who serves, its automation, each hub's health and
    /// sources, and its latest failover event.
    static func build(_ deployment: DeploymentDefinition, from reads: any ControlReads, now: Date) throws
        -> DeploymentView
    {
        let state = try ControlSession.loadDeploymentState(deployment, from: reads)
        let policy = deployment.policy
        let hubs = try deployment.hubs.map { hub -> HubView in
            let health = try reads.hubState(HubReference(deploymentId: deployment.id, hubId: hub.id))
            var sources: [SourceView] = health.probes.map { source, probe in
                SourceView(
                    source: source, kind: "probe", state: probe.state(now: now, policy: policy),
                    lastObservedAt: probe.lastObservedAt.map(Timestamp.format),
                    consecutiveFailures: probe.streak.consecutiveFailures,
                    consecutiveSuccesses: probe.streak.consecutiveSuccesses, rule: nil, label: nil, evidence: nil)
            }
            sources += health.azure.map { source, signal in
                SourceView(
                    source: source, kind: "azure", state: signal.state, lastObservedAt: Timestamp.format(signal.since),
                    consecutiveFailures: nil, consecutiveSuccesses: nil, rule: signal.rule, label: signal.label,
                    evidence: signal.evidence)
            }
            return HubView(
                id: hub.id, region: hub.region, regionName: hub.regionName, role: hub.role, endpoint: hub.endpoint,
                serving: state.serving.contains(hub.id),
                health: HealthTracker.health(of: health, policy: policy, now: now),
                healthSince: health.healthSince.map(Timestamp.format),
                sources: sources.sorted { $0.source < $1.source },
                openWindow: health.openWindow.map { FailureWindowView($0, updatedAt: now) },
                readiness: ReadinessView.checks(of: health, policy: policy, now: now))
        }
        let automationState: String
        var reason: String?
        if state.paused {
            automationState = "paused"
            reason = state.pausedReason
        } else if let hold = state.hold {
            automationState = "held"
            reason = hold
        } else if policy.dryRun {
            automationState = "dry-run"
        } else {
            automationState = "active"
        }
        return DeploymentView(
            id: deployment.id, pattern: deployment.pattern, serving: state.serving,
            automation: AutomationView(
                state: automationState, reason: reason, paused: state.paused, dryRun: policy.dryRun,
                failbackReady: state.failbackReady, openFailoverEventId: state.openEventId,
                automaticMovesLastHour: state.automaticMoves.filter { now.timeIntervalSince($0) < 3600 }.count,
                lastMoveAt: state.lastMoveAt.map(Timestamp.format),
                pausedUntil: state.pausedUntil.map(Timestamp.format),
                maintenanceWindows: (state.maintenance ?? []).filter { $0.isActive(at: now) }.map(\.id)),
            hubs: hubs, lastFailover: try reads.latestFailoverEvent(deploymentId: deployment.id))
    }
}

extension FailureWindowView {
    /// A window as the tracker holds it.
    public init(_ window: FailureWindow, updatedAt: Date) {
        self.init(
            id: window.id, deploymentId: window.deploymentId, hubId: window.hubId, open: window.closedAt == nil,
            openedAt: Timestamp.format(window.openedAt), firstFailureAt: Timestamp.format(window.firstFailureAt),
            lastFailureAt: Timestamp.format(window.lastFailureAt), failureCount: window.failureCount,
            sources: window.sources, evidence: window.evidence,
            declaredDownAt: window.declaredDownAt.map(Timestamp.format), closedAt: window.closedAt.map(Timestamp.format)
        )
    }
}
