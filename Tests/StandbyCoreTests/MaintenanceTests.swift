import Foundation
import StandbyCore
import StandbyPrimitives
import StandbyTestSupport
import Testing

@Suite("Maintenance windows and pauses in the decision engine")
struct MaintenanceTests {
    let t0 = Timestamp.parse("2026-11-28T10:00:00Z")!
    let ids = CountingIDs()

    func down() -> HubStatus {
        HubStatus(
            health: .down, downSources: ["probe:a"], downRules: ["failure-threshold"], evidence: ["report:1"],
            windowId: "w1")
    }

    func window(_ id: String, hubs: [String], from: Date, to: Date) -> MaintenanceWindow {
        MaintenanceWindow(
            id: id, deploymentId: "prod", hubs: hubs, startsAt: from, endsAt: to, reason: "patching", createdBy: "ops",
            createdAt: from)
    }

    func moves(_ decisions: [Decision]) -> [FailoverPlan] {
        decisions.compactMap { if case .move(let plan) = $0 { plan } else { nil } }
    }

    @Test("a failover away from a hub in maintenance is suppressed once, with the window's id, then made when it ends")
    func suppressesThenReleases() throws {
        let deployment = makeDeployment(.activePassive)
        let engine = DecisionEngine(deployment: deployment, ids: ids)
        var state = DeploymentState.initial(for: deployment)
        let maintenance = window("mw1", hubs: ["east"], from: t0, to: t0 + 600)
        let health = ["east": down(), "west": HubStatus(health: .up, healthySince: t0 - 3600)]

        let during = engine.evaluate(&state, health: health, maintenance: [maintenance], now: t0 + 1)
        #expect(moves(during).isEmpty)
        #expect(during.contains(.maintenanceStarted(maintenance)))
        let suppressed = during.compactMap {
            if case .suppressed(let reason, let id) = $0 { (reason, id) } else { nil }
        }
        #expect(suppressed.count == 1)
        #expect(suppressed.first?.1 == "mw1")
        #expect(suppressed.first?.0.contains("from east to west") == true)
        #expect(state.serving == ["east"])
        #expect(state.openEventId == nil && state.lastMoveAt == nil)
        // Still in the window: nothing new is recorded.
        #expect(engine.evaluate(&state, health: health, maintenance: [maintenance], now: t0 + 2).isEmpty)

        // The window is over and east is still DOWN: the engine decides as it would have.
        let after = engine.evaluate(&state, health: health, maintenance: [], now: t0 + 601)
        #expect(after.first == .maintenanceEnded(maintenance))
        let plan = try #require(moves(after).first)
        #expect(plan.kind == .failover && plan.fromHub == "east" && plan.toHub == "west")
        #expect(state.serving == ["west"])
    }

    @Test("a window on the target suppresses a move to it; a window on another deployment's hub changes nothing")
    func targetInMaintenance() {
        let deployment = makeDeployment(.activePassive)
        let engine = DecisionEngine(deployment: deployment, ids: ids)
        var state = DeploymentState.initial(for: deployment)
        let onTarget = window("mw2", hubs: ["west"], from: t0, to: t0 + 600)
        let decisions = engine.evaluate(
            &state, health: ["east": down(), "west": HubStatus(health: .up)], maintenance: [onTarget], now: t0)
        #expect(moves(decisions).isEmpty)
        #expect(decisions.contains { if case .suppressed(_, "mw2") = $0 { true } else { false } })

        var other = DeploymentState.initial(for: deployment)
        let elsewhere = window("mw3", hubs: ["north"], from: t0, to: t0 + 600)
        let free = engine.evaluate(
            &other, health: ["east": down(), "west": HubStatus(health: .up)], maintenance: [elsewhere], now: t0)
        #expect(moves(free).count == 1)
    }

    @Test("operator actions still work during a window")
    func operatorsStillAct() throws {
        let deployment = makeDeployment(.activePassive)
        let engine = DecisionEngine(deployment: deployment, ids: ids)
        var state = DeploymentState.initial(for: deployment)
        _ = engine.evaluate(
            &state, health: ["east": HubStatus(health: .up)],
            maintenance: [window("mw", hubs: [], from: t0, to: t0 + 60)],
            now: t0)
        let decisions = try engine.apply(
            OperatorRequest(action: .failover, reason: "drill", actor: "ops"), to: &state,
            health: ["east": HubStatus(health: .up), "west": HubStatus(health: .up)], now: t0 + 1)
        #expect(moves(decisions).count == 1)
        #expect(state.serving == ["west"])
    }

    @Test("a pause with until resumes by itself once, and holds automation until then")
    func pauseUntil() throws {
        let deployment = makeDeployment(.activePassive)
        let engine = DecisionEngine(deployment: deployment, ids: ids)
        var state = DeploymentState.initial(for: deployment)
        _ = try engine.apply(
            OperatorRequest(action: .pause, reason: "change freeze", actor: "ops", until: t0 + 300), to: &state,
            health: [:], now: t0)
        #expect(state.paused && state.pausedUntil == t0 + 300)
        let health = ["east": down(), "west": HubStatus(health: .up)]
        let held = engine.evaluate(&state, health: health, now: t0 + 10)
        #expect(moves(held).isEmpty)
        #expect(
            held.contains {
                if case .hold(let reason) = $0 { reason.contains("until 2026-11-28T10:05:00") } else { false }
            })

        let expired = engine.evaluate(&state, health: health, now: t0 + 300)
        #expect(expired.first == .pauseExpired(reason: "change freeze"))
        #expect(!state.paused && state.pausedUntil == nil)
        #expect(moves(expired).count == 1)
        #expect(
            engine.evaluate(&state, health: health, now: t0 + 301).allSatisfy {
                if case .pauseExpired = $0 { false } else { true }
            })
    }

    @Test("a pause whose until is not in the future is refused")
    func pauseUntilPast() {
        let deployment = makeDeployment(.activePassive)
        let engine = DecisionEngine(deployment: deployment, ids: ids)
        var state = DeploymentState.initial(for: deployment)
        #expect(throws: OperatorRefusal.self) {
            try engine.apply(
                OperatorRequest(action: .pause, reason: "x", actor: "ops", until: t0), to: &state, health: [:], now: t0)
        }
        #expect(!state.paused)
    }

    @Test("both hubs DOWN is a no-target decision, recorded once")
    func noTarget() {
        let deployment = makeDeployment(.activePassive)
        let engine = DecisionEngine(deployment: deployment, ids: ids)
        var state = DeploymentState.initial(for: deployment)
        let health = ["east": down(), "west": down()]
        let first = engine.evaluate(&state, health: health, now: t0)
        #expect(first.count == 1)
        #expect(first.allSatisfy { if case .noTarget = $0 { true } else { false } })
        #expect(engine.evaluate(&state, health: health, now: t0 + 1).isEmpty)
    }

    @Test("a weekly window in a named time zone: its occurrence, across midnight and across a DST change")
    func weekly() throws {
        let london = try #require(TimeZone(identifier: "Europe/London"))
        // Saturdays 23:00 to 01:00 London time.
        let weekly = RecurringMaintenance(
            name: "patching", deploymentId: "prod", hubs: ["west"], weekdays: [7], start: 23 * 60, end: 60,
            timeZone: london, reason: "weekly patching")
        // 2026-11-28 is a Saturday; London is on GMT (UTC+0).
        let saturdayNight = Timestamp.parse("2026-11-28T23:30:00Z")!
        let occurrence = try #require(weekly.occurrence(at: saturdayNight))
        #expect(occurrence.id == "patching@2026-11-28T23:00:00.000Z")
        #expect(occurrence.endsAt == Timestamp.parse("2026-11-29T01:00:00Z")!)
        // Past midnight, Sunday 00:30: still the Saturday occurrence.
        #expect(weekly.occurrence(at: Timestamp.parse("2026-11-29T00:30:00Z")!)?.id == occurrence.id)
        #expect(weekly.occurrence(at: Timestamp.parse("2026-11-29T01:00:00Z")!) == nil)
        #expect(weekly.occurrence(at: Timestamp.parse("2026-11-27T23:30:00Z")!) == nil)
        // In summer London is UTC+1: the same local hours are an hour earlier in UTC.
        let summer = try #require(weekly.occurrence(at: Timestamp.parse("2026-07-04T22:30:00Z")!))
        #expect(summer.startsAt == Timestamp.parse("2026-07-04T22:00:00Z")!)
        let schedule = MaintenanceSchedule(recurring: [weekly])
        #expect(schedule.active(deploymentId: "prod", at: saturdayNight).map(\.id) == [occurrence.id])
        #expect(schedule.active(deploymentId: "other", at: saturdayNight).isEmpty)
    }
}
