import Foundation
import StandbyCore
import StandbyPrimitives
import StandbyTestSupport
import Testing

func makeDeployment(_ pattern: DeploymentPattern, hubs: Int = 2, configure: (inout Policy) -> Void = { _ in })
    -> DeploymentDefinition
{
    var policy = Policy()
    configure(&policy)
    let names = ["east", "west", "north"]
    let definitions = (0..<hubs).map { index in
        HubDefinition(
            id: names[index], region: names[index], regionName: names[index], role: index == 0 ? .primary : .secondary,
            endpoint: "", resources: [])
    }
    return DeploymentDefinition(id: "prod", pattern: pattern, hubs: definitions, policy: policy)
}

@Suite("Decision engine")
struct DecisionEngineTests {
    let t0 = Timestamp.parse("2026-11-28T10:00:00Z")!
    let ids = CountingIDs()

    func down(_ window: String = "w1") -> HubStatus {
        HubStatus(
            health: .down, downSources: ["probe:a"], downRules: ["failure-threshold"], evidence: ["report:1"],
            windowId: window)
    }

    func up(since: Date) -> HubStatus { HubStatus(health: .up, healthySince: since) }

    func moves(_ decisions: [Decision]) -> [FailoverPlan] {
        decisions.compactMap { if case .move(let plan) = $0 { plan } else { nil } }
    }

    @Test("active-passive: primary DOWN → scale_compute up on the secondary, then route_traffic to it")
    func failover() throws {
        let deployment = makeDeployment(.activePassive)
        let engine = DecisionEngine(deployment: deployment, ids: ids)
        var state = DeploymentState.initial(for: deployment)
        let plans = moves(
            engine.evaluate(&state, health: ["east": down(), "west": HubStatus(health: .unknown)], now: t0))
        let plan = try #require(plans.first)
        #expect(plans.count == 1)
        #expect(plan.kind == .failover)
        #expect(plan.trigger == .window)
        #expect(plan.fromHub == "east")
        #expect(plan.toHub == "west")
        #expect(plan.commands.map(\.kind) == [.scaleCompute, .routeTraffic])
        #expect(plan.commands[0].hub == "west")
        #expect(plan.commands[0].parameters["direction"] == "up")
        #expect(plan.commands[1].fromHub == "east" && plan.commands[1].toHub == "west")
        #expect(plan.reason.contains("failure window w1"))
        #expect(plan.rule == "failure-threshold")
        #expect(plan.interruptedHubs == ["east"])
        #expect(state.serving == ["west"])
        #expect(state.openEventId == plan.id)
        // Evaluating again with the same health decides nothing more.
        #expect(
            engine.evaluate(&state, health: ["east": down(), "west": HubStatus(health: .unknown)], now: t0 + 1).isEmpty)
    }

    @Test("secondary also DOWN: no failover, and the deployment says why (once)")
    func noTarget() {
        let deployment = makeDeployment(.activePassive)
        let engine = DecisionEngine(deployment: deployment, ids: ids)
        var state = DeploymentState.initial(for: deployment)
        let decisions = engine.evaluate(&state, health: ["east": down(), "west": down("w2")], now: t0)
        #expect(moves(decisions).isEmpty)
        guard case .noTarget(let reason)? = decisions.first else {
            Issue.record("expected a no-target hold, got \(decisions)")
            return
        }
        #expect(reason.contains("west is DOWN"))
        #expect(state.hold == reason)
        #expect(engine.evaluate(&state, health: ["east": down(), "west": down("w2")], now: t0 + 1).isEmpty)
    }

    @Test("guardrails: paused, cooldown, maxFailoversPerHour hold automation and say so")
    func guardrails() {
        let deployment = makeDeployment(.activePassive) { $0.maxFailoversPerHour = 1 }
        let engine = DecisionEngine(deployment: deployment, ids: ids)
        var paused = DeploymentState.initial(for: deployment)
        paused.paused = true
        paused.pausedReason = "maintenance"
        let pausedDecisions = engine.evaluate(&paused, health: ["east": down()], now: t0)
        #expect(pausedDecisions == [.hold("east is DOWN; failover to west held: automation is paused (maintenance)")])

        var cooling = DeploymentState.initial(for: deployment)
        cooling.lastMoveAt = t0 - 60
        guard case .hold(let reason)? = engine.evaluate(&cooling, health: ["east": down()], now: t0).first else {
            Issue.record("expected a cooldown hold")
            return
        }
        #expect(reason.contains("cooldown"))

        var limited = DeploymentState.initial(for: deployment)
        limited.automaticMoves = [t0 - 1800]
        limited.lastMoveAt = t0 - 1800
        guard case .hold(let limit)? = engine.evaluate(&limited, health: ["east": down()], now: t0).first else {
            Issue.record("expected a rate-limit hold")
            return
        }
        #expect(limit.contains("rate limit"))
        // An hour later the move is allowed again.
        #expect(moves(engine.evaluate(&limited, health: ["east": down()], now: t0 + 1801)).count == 1)
    }

    @Test("dry run: the decision and its commands are recorded as dry-run and hold no event open")
    func dryRun() throws {
        let deployment = makeDeployment(.activePassive) { $0.dryRun = true }
        var state = DeploymentState.initial(for: deployment)
        let plan = try #require(
            moves(DecisionEngine(deployment: deployment, ids: ids).evaluate(&state, health: ["east": down()], now: t0))
                .first)
        #expect(plan.dryRun)
        #expect(state.openEventId == nil)
    }

    @Test("manual failback: the primary's stability is announced once, no command")
    func manualFailback() {
        let deployment = makeDeployment(.activePassive)
        let engine = DecisionEngine(deployment: deployment, ids: ids)
        var state = DeploymentState.initial(for: deployment)
        _ = engine.evaluate(&state, health: ["east": down()], now: t0)
        DecisionEngine.settle(eventId: state.openEventId!, in: &state)
        let recovered = t0 + 600
        #expect(engine.evaluate(&state, health: ["east": up(since: recovered)], now: recovered + 899).isEmpty)
        let ready = engine.evaluate(&state, health: ["east": up(since: recovered)], now: recovered + 900)
        #expect(ready.count == 1)
        if case .failbackReady = ready.first {} else { Issue.record("expected failbackReady, got \(ready)") }
        #expect(engine.evaluate(&state, health: ["east": up(since: recovered)], now: recovered + 901).isEmpty)
        #expect(state.serving == ["west"])
    }

    @Test("automatic failback after stableFor routes back to the primary and scales the secondary down")
    func automaticFailback() throws {
        let deployment = makeDeployment(.activePassive) { $0.failback.mode = .automatic }
        let engine = DecisionEngine(deployment: deployment, ids: ids)
        var state = DeploymentState.initial(for: deployment)
        _ = engine.evaluate(&state, health: ["east": down()], now: t0)
        DecisionEngine.settle(eventId: state.openEventId!, in: &state)
        let recovered = t0 + 600
        // A flap resets stability: healthySince moves.
        #expect(moves(engine.evaluate(&state, health: ["east": up(since: recovered)], now: recovered + 300)).isEmpty)
        let plan = try #require(
            moves(engine.evaluate(&state, health: ["east": up(since: recovered)], now: recovered + 900)).first)
        #expect(plan.kind == .failback)
        #expect(plan.trigger == .stability)
        #expect(plan.commands.map(\.kind) == [.scaleCompute, .routeTraffic, .scaleCompute])
        #expect(plan.commands[2].hub == "west" && plan.commands[2].parameters["direction"] == "down")
        #expect(state.serving == ["east"])
    }

    @Test("active-active: a DOWN hub leaves the rotation and comes back after stableFor; never the last one")
    func activeActive() throws {
        let deployment = makeDeployment(.activeActive, hubs: 3) {
            $0.failback.mode = .automatic
            $0.cooldown = 0
            $0.maxFailoversPerHour = 10
        }
        let engine = DecisionEngine(deployment: deployment, ids: ids)
        var state = DeploymentState.initial(for: deployment)
        let removal = try #require(moves(engine.evaluate(&state, health: ["west": down()], now: t0)).first)
        #expect(removal.kind == .rotationRemove)
        #expect(removal.commands.map(\.kind) == [.removeFromRotation])
        #expect(state.serving == ["east", "north"])
        DecisionEngine.settle(eventId: removal.id, in: &state)
        // Everything DOWN: one hub always stays.
        let all: [String: HubStatus] = ["east": down(), "west": down(), "north": down()]
        let second = try #require(moves(engine.evaluate(&state, health: all, now: t0 + 10)).first)
        DecisionEngine.settle(eventId: second.id, in: &state)
        #expect(state.serving.count == 1)
        #expect(moves(engine.evaluate(&state, health: all, now: t0 + 20)).isEmpty)
        #expect(state.serving.count == 1)
        // Recovery: back after stableFor.
        let healthy: [String: HubStatus] = [
            "east": up(since: t0 + 30), "west": up(since: t0 + 30), "north": up(since: t0 + 30),
        ]
        #expect(moves(engine.evaluate(&state, health: healthy, now: t0 + 60)).isEmpty)
        let restore = try #require(moves(engine.evaluate(&state, health: healthy, now: t0 + 30 + 900)).first)
        #expect(restore.kind == .rotationRestore)
        #expect(state.serving == ["east", "west", "north"])
    }

    @Test("single-region: the outage and its end are recorded, with no command")
    func singleRegion() throws {
        let deployment = makeDeployment(.singleRegion, hubs: 1)
        let engine = DecisionEngine(deployment: deployment, ids: ids)
        var state = DeploymentState.initial(for: deployment)
        let outage = try #require(moves(engine.evaluate(&state, health: ["east": down()], now: t0)).first)
        #expect(outage.kind == .outage)
        #expect(outage.commands.isEmpty)
        #expect(outage.interruptedHubs == ["east"])
        #expect(engine.evaluate(&state, health: ["east": down()], now: t0 + 5).isEmpty)
        let ended = try #require(
            moves(engine.evaluate(&state, health: ["east": up(since: t0 + 10)], now: t0 + 10)).first)
        #expect(ended.kind == .outageEnded)
    }

    @Test("operators: reason recorded, guardrails unless force, never a DOWN target without allowUnhealthyTarget")
    func operatorActions() throws {
        let deployment = makeDeployment(.activePassive)
        let engine = DecisionEngine(deployment: deployment, ids: ids)
        var state = DeploymentState.initial(for: deployment)
        let health: [String: HubStatus] = ["east": HubStatus(health: .up, healthySince: t0), "west": down()]
        #expect(throws: OperatorRefusal.self) {
            try engine.apply(
                OperatorRequest(action: .failover, reason: "drill", actor: "sre"), to: &state, health: health, now: t0)
        }
        #expect(throws: OperatorRefusal.self) {
            try engine.apply(
                OperatorRequest(action: .failover, reason: "drill", actor: "sre", force: true), to: &state,
                health: health, now: t0)
        }
        let forced = try engine.apply(
            OperatorRequest(action: .failover, reason: "drill", actor: "sre", force: true, allowUnhealthyTarget: true),
            to: &state, health: health, now: t0)
        let plan = try #require(moves(forced).first)
        #expect(plan.trigger == .operator)
        #expect(plan.actor == "sre")
        #expect(plan.reason.contains("drill"))
        // Cooldown applies to operators too unless forced; failing back to a healthy primary.
        #expect(throws: OperatorRefusal.self) {
            try engine.apply(
                OperatorRequest(action: .failback, reason: "done", actor: "sre"), to: &state, health: health,
                now: t0 + 60)
        }
        DecisionEngine.settle(eventId: plan.id, in: &state)
        let back = try engine.apply(
            OperatorRequest(action: .failback, reason: "done", actor: "sre", force: true), to: &state, health: health,
            now: t0 + 60)
        #expect(moves(back).first?.kind == .failback)
        #expect(state.serving == ["east"])
        #expect(throws: OperatorRefusal.self) {
            try engine.apply(
                OperatorRequest(action: .failback, reason: "again", actor: "sre", force: true), to: &state,
                health: health, now: t0 + 70)
        }
    }
}
