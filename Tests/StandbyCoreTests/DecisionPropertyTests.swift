import Foundation
import PropertyBased
import StandbyCore
import StandbyPrimitives
import StandbyTestSupport
import Synchronization
import Testing

/// Random runs of reports, clock moves, acknowledgements and operator actions through the tracker
/// and the engine, checking the invariants of DESIGN §4 after every step.
struct Simulation {
    let deployment: DeploymentDefinition
    let ids = CountingIDs()
    var hubs: [String: HubHealthState] = [:]
    var state: DeploymentState
    var now = Timestamp.parse("2026-11-28T10:00:00Z")!
    var plans: [FailoverPlan] = []
    var violations: [String] = []

    init(_ deployment: DeploymentDefinition) {
        self.deployment = deployment
        state = DeploymentState.initial(for: deployment)
        for hub in deployment.hubs { hubs[hub.id] = HubHealthState(deploymentId: deployment.id, hubId: hub.id) }
    }

    var statuses: [String: HubStatus] {
        hubs.mapValues { HubStatus($0, policy: deployment.policy, now: now) }
    }

    /// One step from a random number: which hub, what happened, how much time passed.
    mutating func step(_ code: Int) {
        let hubIds = deployment.hubs.map(\.id)
        let hub = hubIds[code % hubIds.count]
        let action = (code / hubIds.count) % 10
        now += Double((code / 37) % 90)
        switch action {
        case 0..<4:
            report(hub, .failure)
        case 4..<8:
            report(hub, .success)
        case 8:
            if let open = state.openEventId { DecisionEngine.settle(eventId: open, in: &state) }
        default:
            let request = OperatorRequest(
                action: code % 2 == 0 ? .failover : .failback, reason: "random", actor: "prop",
                hub: deployment.pattern == .activeActive ? hub : nil)
            let before = statuses
            if let decisions = try? DecisionEngine(deployment: deployment, ids: ids).apply(
                request, to: &state, health: before, now: now)
            {
                check(decisions, health: before, automatic: false)
            }
        }
        for id in hubIds {
            var hubState = hubs[id]!
            _ = HealthTracker.refresh(&hubState, policy: deployment.policy, now: now)
            hubs[id] = hubState
        }
        let health = statuses
        let openBefore = state.openEventId
        let decisions = DecisionEngine(deployment: deployment, ids: ids).evaluate(&state, health: health, now: now)
        if openBefore != nil,
            decisions.contains(where: { if case .move(let plan) = $0 { !plan.commands.isEmpty } else { false } })
        {
            violations.append("an automatic move was made while failover event \(openBefore!) was open")
        }
        check(decisions, health: health, automatic: true)
    }

    mutating func report(_ hub: String, _ outcome: ObservationOutcome) {
        var hubState = hubs[hub]!
        _ = HealthTracker.apply(
            ProbeObservation(source: "probe:p", outcome: outcome, observedAt: now, evidence: "r"), to: &hubState,
            policy: deployment.policy, now: now, ids: ids)
        hubs[hub] = hubState
    }

    mutating func check(_ decisions: [Decision], health: [String: HubStatus], automatic: Bool) {
        for case .move(let plan) in decisions {
            plans.append(plan)
            for command in plan.commands where command.kind == .routeTraffic || command.kind == .restoreToRotation {
                if health[command.hub]?.health == .down {
                    violations.append("routed to DOWN hub \(command.hub) at \(now)")
                }
            }
        }
        if deployment.pattern != .singleRegion, state.serving.isEmpty { violations.append("no serving hub at \(now)") }
        let automaticMoves = plans.filter { $0.actor == "standby" && !$0.commands.isEmpty }.map(\.decidedAt)
        for move in automaticMoves {
            let inHour = automaticMoves.filter { $0 >= move && $0.timeIntervalSince(move) < 3600 }.count
            if inHour > deployment.policy.maxFailoversPerHour {
                violations.append("\(inHour) automatic moves within an hour from \(move)")
                break
            }
        }
    }
}

@Suite("Decision engine properties")
struct DecisionPropertyTests {
    static let steps = Gen.int(in: 0...99_999).array(of: 1...120)

    @Test("invariants hold for every pattern", arguments: DeploymentPattern.allCases)
    func invariants(_ pattern: DeploymentPattern) async {
        let deployment = makeDeployment(pattern, hubs: pattern == .singleRegion ? 1 : 3) {
            $0.cooldown = 120
            $0.maxFailoversPerHour = 3
            $0.failback.mode = .automatic
            $0.failback.stableFor = 300
        }
        let movesSeen = Mutex(0)
        await propertyCheck(count: 300, input: Self.steps) { codes in
            var simulation = Simulation(deployment)
            for code in codes { simulation.step(code) }
            #expect(simulation.violations.isEmpty, "\(simulation.violations.prefix(3))")
            movesSeen.withLock { $0 += simulation.plans.count }
        }
        // The runs must actually exercise decisions, or the invariants prove nothing.
        #expect(movesSeen.withLock { $0 } > 100)
    }

    @Test("same inputs, same outputs")
    func deterministic() async {
        let deployment = makeDeployment(.activePassive) {
            $0.failback.mode = .automatic; $0.cooldown = 60
        }
        await propertyCheck(count: 100, input: Self.steps) { codes in
            var first = Simulation(deployment)
            var second = Simulation(deployment)
            for code in codes {
                first.step(code)
                second.step(code)
            }
            #expect(first.plans == second.plans)
            #expect(first.state == second.state)
        }
    }
}
