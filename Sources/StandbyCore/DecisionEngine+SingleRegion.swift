import Foundation
import StandbyPrimitives

/// Single-region: there is nowhere to move; an outage is recorded (and its jobs interrupted with no
/// target) when the hub is DOWN, and ended when it is UP again.
extension DecisionEngine {
    func evaluateSingleRegion(_ state: inout DeploymentState, health: [String: HubStatus], now: Date)
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
            return [.move(outage)]
        }
        if hubStatus.health == .up, state.outageOpen {
            let ended = plan(
                .outageEnded, trigger: .stability, from: nil, to: hub, reason: "\(hub) is UP again", rule: "recovery",
                evidence: [], actor: "standby", commands: [], interrupted: [], now: now)
            state.outageOpen = false
            return [.move(ended)]
        }
        return []
    }
}
