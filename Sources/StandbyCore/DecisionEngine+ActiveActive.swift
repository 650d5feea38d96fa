import Foundation
import StandbyPrimitives

/// Active-active: every hub serves; a DOWN hub leaves the rotation (never the last one) and comes
/// back after the same stability rule as a failback.
extension DecisionEngine {
    func evaluateActiveActive(_ state: inout DeploymentState, health: [String: HubStatus], now: Date)
        -> [Decision]
    {
        let down = state.serving.filter { status($0, health).health == .down }
        if !down.isEmpty {
            // Never take the last serving hub out: keep the healthiest of the down ones if all are down.
            var removable = down
            if removable.count == state.serving.count { removable.removeLast() }
            guard !removable.isEmpty else {
                return holdingWithoutTarget(
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

    func activeActiveFailover(
        _ request: OperatorRequest, reason: String, state: inout DeploymentState, health: [String: HubStatus], now: Date
    ) throws(OperatorRefusal) -> FailoverPlan {
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

    func activeActiveFailback(
        _ request: OperatorRequest, reason: String, state: inout DeploymentState, health: [String: HubStatus], now: Date
    ) throws(OperatorRefusal) -> FailoverPlan {
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
