import Foundation
import StandbyPrimitives

/// Active-passive: the primary serves; when it is DOWN and a secondary is not, compute is scaled up
/// on the secondary and traffic routed to it (the primary's running jobs are resubmitted there).
/// Failback once the primary has been UP for `failback.stableFor`: automatically, or announced and
/// left to an operator.
extension DecisionEngine {
    func evaluateActivePassive(_ state: inout DeploymentState, health: [String: HubStatus], now: Date)
        -> [Decision]
    {
        guard let serving = state.serving.first else { return [] }
        let servingStatus = status(serving, health)
        if servingStatus.health == .down {
            // Prefer secondaries in the order the file lists them.
            let candidates = deployment.hubs.filter { $0.id != serving }
            guard let target = candidates.first(where: { status($0.id, health).health != .down }) else {
                return holdingWithoutTarget(
                    &state,
                    "\(serving) is DOWN but no failover target is available: "
                        + candidates.map { "\($0.id) is DOWN" }.joined(separator: ", "))
            }
            if let reason = guardrail(state, now: now) {
                return holding(&state, "\(serving) is DOWN; failover to \(target.id) held: \(reason)")
            }
            let readiness = status(target.id, health).readiness
            if let reason = readinessHold(readiness) {
                // No ready target is a no-target situation: people are told.
                return holdingWithoutTarget(&state, "\(serving) is DOWN; failover to \(target.id) held: \(reason)")
            }
            let (trigger, reason, rule) = trigger(for: servingStatus)
            let move = plan(
                .failover, trigger: trigger, from: serving, to: target.id,
                reason: "\(serving) is DOWN: \(reason)"
                    + (readiness.checks.isEmpty ? "" : "; \(target.id) readiness: \(readiness.description)"),
                rule: rule, evidence: servingStatus.evidence,
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

    func activePassiveFailover(
        _ request: OperatorRequest, reason: String, state: inout DeploymentState, health: [String: HubStatus], now: Date
    ) throws(OperatorRefusal) -> FailoverPlan {
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
    }

    func activePassiveFailback(
        _ request: OperatorRequest, reason: String, state: inout DeploymentState, health: [String: HubStatus], now: Date
    ) throws(OperatorRefusal) -> FailoverPlan {
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
    }
}
