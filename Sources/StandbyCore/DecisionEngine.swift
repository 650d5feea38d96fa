import Foundation

public enum CommandKind: String, Sendable, Codable, CaseIterable {
    case routeTraffic = "route_traffic"
    case scaleCompute = "scale_compute"
    case removeFromRotation = "remove_from_rotation"
    case restoreToRotation = "restore_to_rotation"
}

/// One instruction for the application layer, as decided (the store gives it a status).
public struct CommandPlan: Sendable, Hashable, Codable {
    public var id: String
    public var kind: CommandKind
    /// The hub the command acts on (scaled, removed, restored); for `route_traffic` the target.
    public var hub: String
    public var fromHub: String?
    public var toHub: String?
    public var parameters: [String: String]
}

public enum FailoverKind: String, Sendable, Codable, CaseIterable {
    case failover
    case failback
    case rotationRemove = "rotation_remove"
    case rotationRestore = "rotation_restore"
    /// Single-region: nowhere to move; the outage and its end are recorded for operators.
    case outage
    case outageEnded = "outage_ended"
}

public enum FailoverTrigger: String, Sendable, Codable, CaseIterable {
    case window
    case alert
    case stability
    case `operator`
}

/// One transition of a deployment's routing, with its reason and its commands.
public struct FailoverPlan: Sendable, Hashable, Codable {
    public var id: String
    public var deploymentId: String
    public var kind: FailoverKind
    public var trigger: FailoverTrigger
    public var fromHub: String?
    public var toHub: String?
    /// Human-readable: which window/alert/operator, which rule.
    public var reason: String
    public var rule: String
    public var evidence: [String]
    public var actor: String
    public var dryRun: Bool
    public var commands: [CommandPlan]
    /// Hubs whose running training jobs become interrupted by this move.
    public var interruptedHubs: [String]
    /// Where the interrupted jobs are resubmitted; nil when nothing survives (single-region).
    public var resubmitTo: String?
    public var decidedAt: Date

    public init(
        id: String, deploymentId: String, kind: FailoverKind, trigger: FailoverTrigger, fromHub: String?,
        toHub: String?, reason: String, rule: String, evidence: [String], actor: String, dryRun: Bool,
        commands: [CommandPlan], interruptedHubs: [String], resubmitTo: String?, decidedAt: Date
    ) {
        self.id = id
        self.deploymentId = deploymentId
        self.kind = kind
        self.trigger = trigger
        self.fromHub = fromHub
        self.toHub = toHub
        self.reason = reason
        self.rule = rule
        self.evidence = evidence
        self.actor = actor
        self.dryRun = dryRun
        self.commands = commands
        self.interruptedHubs = interruptedHubs
        self.resubmitTo = resubmitTo
        self.decidedAt = decidedAt
    }
}

/// What the engine knows of a hub when it decides: its health and why.
public struct HubStatus: Sendable, Hashable {
    public var health: HubHealth
    public var healthySince: Date?
    /// The sources that are DOWN and the rules that made them so, for the decision's reason.
    public var downSources: [String]
    public var downRules: [String]
    public var evidence: [String]
    public var windowId: String?

    public init(
        health: HubHealth, healthySince: Date? = nil, downSources: [String] = [], downRules: [String] = [],
        evidence: [String] = [], windowId: String? = nil
    ) {
        self.health = health
        self.healthySince = healthySince
        self.downSources = downSources
        self.downRules = downRules
        self.evidence = evidence
        self.windowId = windowId
    }

    public init(_ state: HubHealthState, policy: Policy, now: Date) {
        let states = state.sourceStates(now: now, policy: policy)
        let down = states.filter { $0.value == .down }.keys.sorted()
        self.init(
            health: state.health, healthySince: state.healthySince, downSources: down,
            downRules: down.map { source in state.azure[source]?.rule ?? "failure-threshold" },
            evidence: (state.openWindow?.evidence ?? []) + down.compactMap { state.azure[$0]?.evidence },
            windowId: state.openWindow?.id)
    }
}

/// The routing state of one deployment, as the engine keeps it between signals.
public struct DeploymentState: Sendable, Hashable, Codable {
    /// Hubs currently serving: one for active-passive and single-region, the rotation for active-active.
    public var serving: [String]
    public var paused = false
    public var pausedReason: String?
    public var lastMoveAt: Date?
    /// Times of automatic moves in the last hour, for `maxFailoversPerHour`.
    public var automaticMoves: [Date] = []
    /// The failover event whose commands are not all acknowledged yet (at most one).
    public var openEventId: String?
    /// Why automation is holding, if it is; kept so a hold is recorded once, not every second.
    public var hold: String?
    /// Active-passive manual failback: the primary is stable and an operator may fail back.
    public var failbackReady = false
    /// Single-region: an outage is recorded and not yet over.
    public var outageOpen = false
    public var lastEventId: String?

    public static func initial(for deployment: DeploymentDefinition) -> DeploymentState {
        switch deployment.pattern {
        case .activeActive:
            return DeploymentState(serving: deployment.hubs.map(\.id))
        case .activePassive, .singleRegion:
            let primary = deployment.hubs.first { $0.role == .primary } ?? deployment.hubs[0]
            return DeploymentState(serving: [primary.id])
        }
    }

    public var automation: String {
        if paused { return "paused" }
        if hold != nil { return "held" }
        return "active"
    }
}

public enum Decision: Sendable, Hashable {
    case move(FailoverPlan)
    /// Automation wants to act but a guardrail stops it; recorded once per reason.
    case hold(String)
    case holdCleared
    case failbackReady(String)
}

public enum OperatorAction: String, Sendable, Codable, CaseIterable {
    case failover
    case failback
    case pause
    case resume
}

public struct OperatorRequest: Sendable, Hashable {
    public var action: OperatorAction
    public var reason: String
    public var actor: String
    /// Overrides cooldown, rate limit and an open failover; never routes to a DOWN hub on its own.
    public var force: Bool
    /// With `force`, allows a DOWN target too.
    public var allowUnhealthyTarget: Bool
    /// For failover: the hub to move to (active-passive) or to take out (active-active).
    public var hub: String?

    public init(
        action: OperatorAction, reason: String, actor: String, force: Bool = false,
        allowUnhealthyTarget: Bool = false, hub: String? = nil
    ) {
        self.action = action
        self.reason = reason
        self.actor = actor
        self.force = force
        self.allowUnhealthyTarget = allowUnhealthyTarget
        self.hub = hub
    }
}

public struct OperatorRefusal: Error, Sendable, Hashable, CustomStringConvertible {
    public var reason: String
    public var description: String { reason }
}

/// The pure decision engine (DESIGN §4, STYLE §7): state, hub health and time in; new state and
/// decisions out. It performs nothing: the caller persists the plans and dispatches commands.
public struct DecisionEngine: Sendable {
    public let deployment: DeploymentDefinition
    public let ids: any IDSource

    public init(deployment: DeploymentDefinition, ids: any IDSource) {
        self.deployment = deployment
        self.ids = ids
    }

    var policy: Policy { deployment.policy }

    // MARK: Automatic decisions

    public func evaluate(_ state: inout DeploymentState, health: [String: HubStatus], now: Date) -> [Decision] {
        state.automaticMoves.removeAll { now.timeIntervalSince($0) >= 3600 }
        switch deployment.pattern {
        case .singleRegion: return evaluateSingleRegion(&state, health: health, now: now)
        case .activePassive: return evaluateActivePassive(&state, health: health, now: now)
        case .activeActive: return evaluateActiveActive(&state, health: health, now: now)
        }
    }

    private func status(_ hub: String, _ health: [String: HubStatus]) -> HubStatus {
        health[hub] ?? HubStatus(health: .unknown)
    }

    /// Why automation may not move right now, or nil.
    private func guardrail(_ state: DeploymentState, now: Date) -> String? {
        if state.paused { return "automation is paused" + (state.pausedReason.map { " (\($0))" } ?? "") }
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

    private func holding(_ state: inout DeploymentState, _ reason: String) -> [Decision] {
        guard state.hold != reason else { return [] }
        state.hold = reason
        return [.hold(reason)]
    }

    private func released(_ state: inout DeploymentState) -> [Decision] {
        guard state.hold != nil else { return [] }
        state.hold = nil
        return [.holdCleared]
    }

    private func trigger(for status: HubStatus) -> (FailoverTrigger, String, String) {
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

    private func plan(
        _ kind: FailoverKind, trigger: FailoverTrigger, from: String?, to: String?, reason: String, rule: String,
        evidence: [String], actor: String, commands: [CommandPlan], interrupted: [String], resubmitTo: String? = nil,
        now: Date
    ) -> FailoverPlan {
        FailoverPlan(
            id: ids.next(), deploymentId: deployment.id, kind: kind, trigger: trigger, fromHub: from, toHub: to,
            reason: reason, rule: rule, evidence: evidence, actor: actor, dryRun: policy.dryRun, commands: commands,
            interruptedHubs: interrupted, resubmitTo: resubmitTo, decidedAt: now)
    }

    private func command(
        _ kind: CommandKind, hub: String, from: String? = nil, to: String? = nil, parameters: [String: String] = [:]
    ) -> CommandPlan {
        CommandPlan(id: ids.next(), kind: kind, hub: hub, fromHub: from, toHub: to, parameters: parameters)
    }

    private func recordMove(_ state: inout DeploymentState, _ plan: FailoverPlan, automatic: Bool, now: Date) {
        if !plan.commands.isEmpty {
            state.lastMoveAt = now
            state.openEventId = plan.dryRun ? nil : plan.id
        }
        if automatic, !plan.commands.isEmpty { state.automaticMoves.append(now) }
        state.lastEventId = plan.id
        state.failbackReady = false
        state.hold = nil
    }

    private func failoverCommands(from: String, to: String) -> [CommandPlan] {
        [
            command(.scaleCompute, hub: to, parameters: ["direction": "up"]),
            command(.routeTraffic, hub: to, from: from, to: to),
        ]
    }

    private func failbackCommands(from: String, to: String) -> [CommandPlan] {
        [
            command(.scaleCompute, hub: to, parameters: ["direction": "up"]),
            command(.routeTraffic, hub: to, from: from, to: to),
            command(.scaleCompute, hub: from, parameters: ["direction": "down"]),
        ]
    }

    private var primaryId: String {
        (deployment.hubs.first { $0.role == .primary } ?? deployment.hubs[0]).id
    }

    private func evaluateActivePassive(_ state: inout DeploymentState, health: [String: HubStatus], now: Date)
        -> [Decision]
    {
        guard let serving = state.serving.first else { return [] }
        let servingStatus = status(serving, health)
        if servingStatus.health == .down {
            // Prefer secondaries in the order the file lists them.
            let candidates = deployment.hubs.filter { $0.id != serving }
            guard let target = candidates.first(where: { status($0.id, health).health != .down }) else {
                return holding(
                    &state,
                    "\(serving) is DOWN but no failover target is available: "
                        + candidates.map { "\($0.id) is DOWN" }.joined(separator: ", "))
            }
            if let reason = guardrail(state, now: now) {
                return holding(&state, "\(serving) is DOWN; failover to \(target.id) held: \(reason)")
            }
            let (trigger, reason, rule) = trigger(for: servingStatus)
            let move = plan(
                .failover, trigger: trigger, from: serving, to: target.id,
                reason: "\(serving) is DOWN: \(reason)", rule: rule, evidence: servingStatus.evidence,
                actor: "standby", commands: failoverCommands(from: serving, to: target.id), interrupted: [serving],
                resubmitTo: target.id, now: now)
            recordMove(&state, move, automatic: true, now: now)
            state.serving = [target.id]
            return [.move(move)]
        }
        let primary = primaryId
        guard serving != primary else {
            state.failbackReady = false
            return released(&state)
        }
        let primaryStatus = status(primary, health)
        guard primaryStatus.health == .up, let since = primaryStatus.healthySince,
            now.timeIntervalSince(since) >= policy.failback.stableFor
        else {
            state.failbackReady = false
            return released(&state)
        }
        let stableReason =
            "\(primary) has been UP since \(Timestamp.format(since)) "
            + "(failback.stableFor \(Int(policy.failback.stableFor))s)"
        guard policy.failback.mode == .automatic else {
            guard !state.failbackReady else { return [] }
            state.failbackReady = true
            return [.failbackReady("\(stableReason); failback.mode is manual: awaiting an operator")]
        }
        if let reason = guardrail(state, now: now) {
            return holding(&state, "failback to \(primary) held: \(reason)")
        }
        let move = plan(
            .failback, trigger: .stability, from: serving, to: primary, reason: stableReason,
            rule: "failback.stableFor", evidence: [], actor: "standby",
            commands: failbackCommands(from: serving, to: primary), interrupted: [], now: now)
        recordMove(&state, move, automatic: true, now: now)
        state.serving = [primary]
        return [.move(move)]
    }

    private func evaluateActiveActive(_ state: inout DeploymentState, health: [String: HubStatus], now: Date)
        -> [Decision]
    {
        let down = state.serving.filter { status($0, health).health == .down }
        if !down.isEmpty {
            // Never take the last serving hub out: keep the healthiest of the down ones if all are down.
            var removable = down
            if removable.count == state.serving.count { removable.removeLast() }
            guard !removable.isEmpty else {
                return holding(
                    &state,
                    "every serving hub is DOWN; \(state.serving.joined(separator: ", ")) stays in rotation as the last serving hub"
                )
            }
            if let reason = guardrail(state, now: now) {
                return holding(&state, "\(removable.joined(separator: ", ")) DOWN; removal held: \(reason)")
            }
            let reasons = removable.map { hub -> String in "\(hub) is DOWN: \(trigger(for: status(hub, health)).1)" }
            let first = status(removable[0], health)
            let move = plan(
                .rotationRemove, trigger: trigger(for: first).0, from: removable.joined(separator: ","), to: nil,
                reason: reasons.joined(separator: "; "), rule: trigger(for: first).2,
                evidence: removable.flatMap { status($0, health).evidence }, actor: "standby",
                commands: removable.map { command(.removeFromRotation, hub: $0) }, interrupted: removable,
                resubmitTo: state.serving.first { !removable.contains($0) }, now: now)
            recordMove(&state, move, automatic: true, now: now)
            state.serving.removeAll { removable.contains($0) }
            return [.move(move)]
        }
        let restorable = deployment.hubs.map(\.id).filter { hub in
            guard !state.serving.contains(hub) else { return false }
            let hubStatus = status(hub, health)
            guard hubStatus.health == .up, let since = hubStatus.healthySince else { return false }
            return now.timeIntervalSince(since) >= policy.failback.stableFor
        }
        guard !restorable.isEmpty else {
            state.failbackReady = false
            return released(&state)
        }
        let reason =
            restorable.map { hub in
                "\(hub) has been UP since \(Timestamp.format(status(hub, health).healthySince ?? now))"
            }.joined(separator: "; ") + " (failback.stableFor \(Int(policy.failback.stableFor))s)"
        guard policy.failback.mode == .automatic else {
            guard !state.failbackReady else { return [] }
            state.failbackReady = true
            return [.failbackReady("\(reason); failback.mode is manual: awaiting an operator")]
        }
        if let held = guardrail(state, now: now) {
            return holding(&state, "restoring \(restorable.joined(separator: ", ")) held: \(held)")
        }
        let move = plan(
            .rotationRestore, trigger: .stability, from: nil, to: restorable.joined(separator: ","), reason: reason,
            rule: "failback.stableFor", evidence: [], actor: "standby",
            commands: restorable.map { command(.restoreToRotation, hub: $0) }, interrupted: [], now: now)
        recordMove(&state, move, automatic: true, now: now)
        state.serving = deployment.hubs.map(\.id).filter { state.serving.contains($0) || restorable.contains($0) }
        return [.move(move)]
    }

    private func evaluateSingleRegion(_ state: inout DeploymentState, health: [String: HubStatus], now: Date)
        -> [Decision]
    {
        guard let hub = deployment.hubs.first?.id else { return [] }
        let hubStatus = status(hub, health)
        if hubStatus.health == .down, !state.outageOpen {
            let (trigger, reason, rule) = trigger(for: hubStatus)
            let outage = plan(
                .outage, trigger: trigger, from: hub, to: nil,
                reason: "\(hub) is DOWN: \(reason); single-region deployment, no failover target", rule: rule,
                evidence: hubStatus.evidence, actor: "standby", commands: [], interrupted: [hub], now: now)
            state.outageOpen = true
            state.lastEventId = outage.id
            return [.move(outage)]
        }
        if hubStatus.health == .up, state.outageOpen {
            let ended = plan(
                .outageEnded, trigger: .stability, from: nil, to: hub, reason: "\(hub) is UP again", rule: "recovery",
                evidence: [], actor: "standby", commands: [], interrupted: [], now: now)
            state.outageOpen = false
            state.lastEventId = ended.id
            return [.move(ended)]
        }
        return []
    }

    // MARK: Operator actions

    public func apply(
        _ request: OperatorRequest, to state: inout DeploymentState, health: [String: HubStatus], now: Date
    ) throws(OperatorRefusal) -> [Decision] {
        switch request.action {
        case .pause:
            state.paused = true
            state.pausedReason = request.reason
            return []
        case .resume:
            state.paused = false
            state.pausedReason = nil
            state.hold = nil
            return []
        case .failover:
            return [.move(try operatorFailover(request, state: &state, health: health, now: now))]
        case .failback:
            return [.move(try operatorFailback(request, state: &state, health: health, now: now))]
        }
    }

    private func checkOperatorGuardrails(_ request: OperatorRequest, _ state: DeploymentState, now: Date)
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

    private func checkTarget(_ hub: String, _ request: OperatorRequest, _ health: [String: HubStatus])
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
            guard let serving = state.serving.first else { throw OperatorRefusal(reason: "no serving hub") }
            let target: String
            if let requested = request.hub {
                target = requested
            } else if let candidate = deployment.hubs.first(where: {
                $0.id != serving && status($0.id, health).health != .down
            }) {
                target = candidate.id
            } else if request.force, request.allowUnhealthyTarget,
                let any = deployment.hubs.first(where: { $0.id != serving })
            {
                target = any.id
            } else {
                throw OperatorRefusal(reason: "every other hub of \(deployment.id) is DOWN")
            }
            guard target != serving else { throw OperatorRefusal(reason: "\(target) is already serving") }
            try checkTarget(target, request, health)
            let move = plan(
                .failover, trigger: .operator, from: serving, to: target, reason: reason, rule: "operator",
                evidence: [], actor: request.actor, commands: failoverCommands(from: serving, to: target),
                interrupted: [serving], resubmitTo: target, now: now)
            recordMove(&state, move, automatic: false, now: now)
            state.serving = [target]
            return move
        case .activeActive:
            guard let hub = request.hub else {
                throw OperatorRefusal(reason: "active-active failover takes \"hub\": the hub to take out of rotation")
            }
            guard state.serving.contains(hub) else { throw OperatorRefusal(reason: "\(hub) is not in rotation") }
            let remaining = state.serving.filter { $0 != hub }
            guard !remaining.isEmpty else {
                throw OperatorRefusal(reason: "\(hub) is the last serving hub; Standby never empties the rotation")
            }
            if remaining.allSatisfy({ status($0, health).health == .down }),
                !(request.force && request.allowUnhealthyTarget)
            {
                throw OperatorRefusal(
                    reason: "every other serving hub is DOWN; set force and allowUnhealthyTarget to proceed")
            }
            let move = plan(
                .rotationRemove, trigger: .operator, from: hub, to: nil, reason: reason, rule: "operator", evidence: [],
                actor: request.actor, commands: [command(.removeFromRotation, hub: hub)], interrupted: [hub],
                resubmitTo: remaining.first, now: now)
            recordMove(&state, move, automatic: false, now: now)
            state.serving = remaining
            return move
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
            let primary = primaryId
            guard let serving = state.serving.first, serving != primary else {
                throw OperatorRefusal(reason: "\(primary) is already serving; there is nothing to fail back")
            }
            try checkTarget(primary, request, health)
            let move = plan(
                .failback, trigger: .operator, from: serving, to: primary, reason: reason, rule: "operator",
                evidence: [], actor: request.actor, commands: failbackCommands(from: serving, to: primary),
                interrupted: [], now: now)
            recordMove(&state, move, automatic: false, now: now)
            state.serving = [primary]
            return move
        case .activeActive:
            let outOfRotation = deployment.hubs.map(\.id).filter { !state.serving.contains($0) }
            let hubs = request.hub.map { [$0] } ?? outOfRotation
            guard !hubs.isEmpty else { throw OperatorRefusal(reason: "every hub is already in rotation") }
            for hub in hubs {
                guard outOfRotation.contains(hub) else {
                    throw OperatorRefusal(reason: "\(hub) is already in rotation")
                }
                try checkTarget(hub, request, health)
            }
            let move = plan(
                .rotationRestore, trigger: .operator, from: nil, to: hubs.joined(separator: ","), reason: reason,
                rule: "operator", evidence: [], actor: request.actor,
                commands: hubs.map { command(.restoreToRotation, hub: $0) }, interrupted: [], now: now)
            recordMove(&state, move, automatic: false, now: now)
            state.serving = deployment.hubs.map(\.id).filter { state.serving.contains($0) || hubs.contains($0) }
            return move
        }
    }

    /// A failover event settled (all commands acknowledged, or one failed): automation may move again.
    public static func settle(eventId: String, in state: inout DeploymentState) {
        if state.openEventId == eventId { state.openEventId = nil }
    }
}
