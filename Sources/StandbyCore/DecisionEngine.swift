import Foundation
import StandbyPrimitives

/// The decision engine: pure, deployment state + hub health + time in, decisions out. This file
/// holds what every pattern shares (dispatch, guardrails, plans and commands, operator checks); each
/// pattern's own rules are in `DecisionEngine+ActivePassive.swift`, `+ActiveActive.swift` and
/// `+SingleRegion.swift`.
public struct DecisionEngine: Sendable {
    public let deployment: DeploymentDefinition
    public let ids: any IDSource

    public init(deployment: DeploymentDefinition, ids: any IDSource) {
        self.deployment = deployment
        self.ids = ids
    }

    var policy: Policy { deployment.policy }

    // MARK: Automatic decisions

    /// What automation does now. `maintenance` are the deployment's windows in effect at `now`:
    /// their start and end are recorded, and an automatic move involving one of their hubs is
    /// suppressed (the state stays as it was, so the move is decided afresh once the window ends).
    public func evaluate(
        _ state: inout DeploymentState, health: [String: HubStatus], maintenance: [MaintenanceWindow] = [],
        now: Date
    ) -> [Decision] {
        state.automaticMoves.removeAll { now.timeIntervalSince($0) >= 3600 }
        var decisions = maintenanceTransitions(&state, active: maintenance)
        if state.paused, let until = state.pausedUntil, until <= now {
            decisions.append(.pauseExpired(reason: state.pausedReason))
            state.paused = false
            state.pausedReason = nil
            state.pausedUntil = nil
            state.hold = nil
        }
        if let drill = state.drill {
            return decisions + evaluateDrill(drill, &state, health: health, now: now)
        }
        var candidate = state
        let decided: [Decision]
        switch deployment.pattern {
        case .singleRegion: decided = evaluateSingleRegion(&candidate, health: health, now: now)
        case .activePassive: decided = evaluateActivePassive(&candidate, health: health, now: now)
        case .activeActive: decided = evaluateActiveActive(&candidate, health: health, now: now)
        }
        if let (plan, window) = suppressingWindow(decided, maintenance) {
            let reason =
                "automatic \(plan.kind.rawValue) \(Self.describeMove(plan))\(Self.suppressedBy)"
                + "\(window.id) (\(window.reason)) until \(Timestamp.format(window.effectiveEnd))"
            guard state.hold != reason else { return decisions }
            state.hold = reason
            return decisions + [.suppressed(reason, windowId: window.id)]
        }
        state = candidate
        return decisions + decided
    }

    /// What every suppression's reason says, and how a hold is known to be one.
    static let suppressedBy = " suppressed: maintenance window "

    /// Records windows that began or ended since the last evaluation; a suppression's hold ends
    /// with them, so that the next evaluation decides afresh.
    func maintenanceTransitions(_ state: inout DeploymentState, active: [MaintenanceWindow]) -> [Decision] {
        let before = state.maintenance ?? []
        let activeIds = Set(active.map(\.id))
        let beforeIds = Set(before.map(\.id))
        let decisions =
            before.filter { !activeIds.contains($0.id) }.map(Decision.maintenanceEnded)
            + active.filter { !beforeIds.contains($0.id) }.map(Decision.maintenanceStarted)
        state.maintenance = active.isEmpty ? nil : active
        if !decisions.isEmpty, state.hold?.contains(Self.suppressedBy) == true { state.hold = nil }
        return decisions
    }

    /// The first automatic move among `decisions` that involves a hub in one of `windows`, and that window.
    func suppressingWindow(_ decisions: [Decision], _ windows: [MaintenanceWindow])
        -> (FailoverPlan, MaintenanceWindow)?
    {
        guard !windows.isEmpty else { return nil }
        for case .move(let plan) in decisions where !plan.commands.isEmpty {
            let involved = Set(plan.commands.map(\.hub) + [plan.fromHub, plan.toHub].compactMap { $0 })
                .union(plan.fromHub?.split(separator: ",").map(String.init) ?? [])
            if let window = windows.first(where: { !involved.isDisjoint(with: $0.coveredHubs(of: deployment)) }) {
                return (plan, window)
            }
        }
        return nil
    }

    /// "from eastus-hub to westus-hub", "of eastus-hub", for reasons and summaries.
    public static func describeMove(_ plan: FailoverPlan) -> String {
        switch (plan.fromHub, plan.toHub) {
        case (let from?, let to?): return "from \(from) to \(to)"
        case (let from?, nil): return "of \(from)"
        case (nil, let to?): return "to \(to)"
        case (nil, nil): return ""
        }
    }

    func status(_ hub: String, _ health: [String: HubStatus]) -> HubStatus {
        health[hub] ?? HubStatus(health: .unknown)
    }

    /// Why automation may not move right now, or nil.
    func guardrail(_ state: DeploymentState, now: Date) -> String? {
        if state.paused {
            return "automation is paused" + (state.pausedReason.map { " (\($0))" } ?? "")
                + (state.pausedUntil.map { " until \(Timestamp.format($0))" } ?? "")
        }
        if let open = state.openEventId { return "failover event \(open) is still awaiting acknowledgement" }
        if let last = state.lastMoveAt, now.timeIntervalSince(last) < policy.cooldown {
            let until = last.addingTimeInterval(policy.cooldown)
            return
                "cooldown: the last move was at \(Timestamp.format(last)); automation may move again at \(Timestamp.format(until))"
        }
        if state.automaticMoves.count >= policy.maxFailoversPerHour {
            return "rate limit: \(state.automaticMoves.count) automatic moves in the last hour "
                + "(maxFailoversPerHour \(policy.maxFailoversPerHour)); only an operator may move traffic now"
        }
        return nil
    }

    /// Why `requireReadyTarget` stops a failover to a target with this readiness, or nil.
    func readinessHold(_ readiness: ReadinessSummary) -> String? {
        guard policy.requireReadyTarget else { return nil }
        switch readiness.overall {
        case .ready: return nil
        case .notReady: return "target not ready (\(readiness.description)); policy.requireReadyTarget is set"
        case .unknown:
            return policy.allowUnknownReadiness
                ? nil : "target readiness unknown (\(readiness.description)); policy.requireReadyTarget is set"
        }
    }

    func holding(_ state: inout DeploymentState, _ reason: String) -> [Decision] {
        guard state.hold != reason else { return [] }
        state.hold = reason
        return [.hold(reason)]
    }

    /// Like `holding`, for a DOWN hub with nowhere to move: people are told.
    func holdingWithoutTarget(_ state: inout DeploymentState, _ reason: String) -> [Decision] {
        guard state.hold != reason else { return [] }
        state.hold = reason
        return [.noTarget(reason)]
    }

    func released(_ state: inout DeploymentState) -> [Decision] {
        guard state.hold != nil else { return [] }
        state.hold = nil
        return [.holdCleared]
    }

    func trigger(for status: HubStatus) -> (FailoverTrigger, String, String) {
        let alertRules = status.downRules.filter { $0 != "failure-threshold" }
        let probeSources = zip(status.downSources, status.downRules).filter { $0.1 == "failure-threshold" }.map(\.0)
        var parts: [String] = []
        if !probeSources.isEmpty {
            parts.append(
                "\(policy.failureThreshold) consecutive failures within \(Int(policy.window))s from "
                    + probeSources.joined(separator: ", ")
                    + (status.windowId.map { " (failure window \($0))" } ?? ""))
        }
        if !alertRules.isEmpty {
            parts.append(
                "Azure signal \(alertRules.joined(separator: ", ")) from \(status.downSources.filter { $0.hasPrefix("azure:") }.joined(separator: ", "))"
            )
        }
        let rule = (probeSources.isEmpty ? [] : ["failure-threshold"]) + alertRules
        let trigger: FailoverTrigger = probeSources.isEmpty && !alertRules.isEmpty ? .alert : .window
        return (trigger, parts.joined(separator: "; "), rule.joined(separator: ","))
    }

    func plan(
        _ kind: FailoverKind, trigger: FailoverTrigger, from: String?, to: String?, reason: String, rule: String,
        evidence: [String], actor: String, commands: [CommandPlan], interrupted: [String], resubmitTo: String? = nil,
        now: Date
    ) -> FailoverPlan {
        FailoverPlan(
            id: ids.next(), deploymentId: deployment.id, kind: kind, trigger: trigger, fromHub: from, toHub: to,
            reason: reason, rule: rule, evidence: evidence, actor: actor, dryRun: policy.dryRun, commands: commands,
            interruptedHubs: interrupted, resubmitTo: resubmitTo, decidedAt: now)
    }

    func command(
        _ kind: CommandKind, hub: String, from: String? = nil, to: String? = nil, parameters: [String: String] = [:]
    ) -> CommandPlan {
        CommandPlan(id: ids.next(), kind: kind, hub: hub, fromHub: from, toHub: to, parameters: parameters)
    }

    func recordMove(_ state: inout DeploymentState, _ plan: FailoverPlan, automatic: Bool, now: Date) {
        if !plan.commands.isEmpty {
            state.lastMoveAt = now
            state.openEventId = plan.dryRun ? nil : plan.id
        }
        if automatic, !plan.commands.isEmpty { state.automaticMoves.append(now) }
        state.failbackReady = false
        state.hold = nil
    }

    func failoverCommands(from: String, to: String) -> [CommandPlan] {
        [
            command(.scaleCompute, hub: to, parameters: ["direction": "up"]),
            command(.routeTraffic, hub: to, from: from, to: to),
        ]
    }

    func failbackCommands(from: String, to: String) -> [CommandPlan] {
        [
            command(.scaleCompute, hub: to, parameters: ["direction": "up"]),
            command(.routeTraffic, hub: to, from: from, to: to),
            command(.scaleCompute, hub: from, parameters: ["direction": "down"]),
        ]
    }

    var primaryId: String {
        (deployment.hubs.first { $0.role == .primary } ?? deployment.hubs[0]).id
    }

    // MARK: Operator actions

    public func apply(
        _ request: OperatorRequest, to state: inout DeploymentState, health: [String: HubStatus], now: Date
    ) throws(OperatorRefusal) -> [Decision] {
        switch request.action {
        case .pause:
            if let until = request.until, until <= now {
                throw OperatorRefusal(reason: "until (\(Timestamp.format(until))) is not in the future")
            }
            state.paused = true
            state.pausedReason = request.reason
            state.pausedUntil = request.until
            return []
        case .resume:
            state.paused = false
            state.pausedReason = nil
            state.pausedUntil = nil
            state.hold = nil
            return []
        case .failover:
            return [.move(try operatorFailover(request, state: &state, health: health, now: now))]
        case .failback:
            return [.move(try operatorFailback(request, state: &state, health: health, now: now))]
        }
    }

    func checkOperatorGuardrails(_ request: OperatorRequest, _ state: DeploymentState, now: Date)
        throws(OperatorRefusal)
    {
        guard !request.force else { return }
        if let open = state.openEventId {
            throw OperatorRefusal(
                reason: "failover event \(open) is still awaiting acknowledgement; use force to supersede it")
        }
        if let last = state.lastMoveAt, now.timeIntervalSince(last) < policy.cooldown {
            throw OperatorRefusal(
                reason:
                    "cooldown until \(Timestamp.format(last.addingTimeInterval(policy.cooldown))); use force to override"
            )
        }
    }

    func checkTarget(_ hub: String, _ request: OperatorRequest, _ health: [String: HubStatus])
        throws(OperatorRefusal)
    {
        guard deployment.hub(hub) != nil else {
            throw OperatorRefusal(reason: "\(hub) is not a hub of \(deployment.id)")
        }
        if status(hub, health).health == .down, !(request.force && request.allowUnhealthyTarget) {
            throw OperatorRefusal(
                reason:
                    "\(hub) is DOWN; Standby never routes to a DOWN hub unless force and allowUnhealthyTarget are both set"
            )
        }
    }

    private func operatorFailover(
        _ request: OperatorRequest, state: inout DeploymentState, health: [String: HubStatus], now: Date
    ) throws(OperatorRefusal) -> FailoverPlan {
        try checkOperatorGuardrails(request, state, now: now)
        let reason = "operator \(request.actor): \(request.reason)"
        switch deployment.pattern {
        case .singleRegion:
            throw OperatorRefusal(reason: "\(deployment.id) is single-region: there is no hub to fail over to")
        case .activePassive:
            return try activePassiveFailover(request, reason: reason, state: &state, health: health, now: now)
        case .activeActive:
            return try activeActiveFailover(request, reason: reason, state: &state, health: health, now: now)
        }
    }

    private func operatorFailback(
        _ request: OperatorRequest, state: inout DeploymentState, health: [String: HubStatus], now: Date
    ) throws(OperatorRefusal) -> FailoverPlan {
        try checkOperatorGuardrails(request, state, now: now)
        let reason = "operator \(request.actor): \(request.reason)"
        switch deployment.pattern {
        case .singleRegion:
            throw OperatorRefusal(reason: "\(deployment.id) is single-region: there is nothing to fail back")
        case .activePassive:
            return try activePassiveFailback(request, reason: reason, state: &state, health: health, now: now)
        case .activeActive:
            return try activeActiveFailback(request, reason: reason, state: &state, health: health, now: now)
        }
    }

    /// A failover event settled (all commands acknowledged, or one failed): automation may move again.
    public static func settle(eventId: String, in state: inout DeploymentState) {
        if state.openEventId == eventId { state.openEventId = nil }
    }
}
