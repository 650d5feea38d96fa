import Foundation
import StandbyCore
import StandbyPrimitives
import StandbyTestSupport
import Testing

@Suite("Health tracker")
struct HealthTrackerTests {
    let t0 = Timestamp.parse("2026-11-28T10:00:00Z")!
    let policy = Policy()

    func run(
        _ steps: [(offset: TimeInterval, outcome: ObservationOutcome)], policy: Policy? = nil,
        source: String = "probe:a"
    )
        -> (HubHealthState, [HealthChange])
    {
        var state = HubHealthState(deploymentId: "d", hubId: "h")
        var changes: [HealthChange] = []
        let ids = CountingIDs()
        for (index, step) in steps.enumerated() {
            let at = t0.addingTimeInterval(step.offset)
            changes += HealthTracker.apply(
                ProbeObservation(source: source, outcome: step.outcome, observedAt: at, evidence: "report:\(index)"),
                to: &state, policy: policy ?? self.policy, now: at, ids: ids)
        }
        return (state, changes)
    }

    @Test("the field rule: two failures are not enough, the third within five minutes is DOWN")
    func threeWithinWindow() {
        #expect(run([(0, .failure), (60, .failure)]).0.health == .degraded)
        let (state, changes) = run([(0, .failure), (60, .failure), (120, .failure)])
        #expect(state.health == .down)
        #expect(state.openWindow?.failureCount == 3)
        #expect(state.openWindow?.declaredDownAt == t0.addingTimeInterval(120))
        #expect(changes.contains { if case .windowDeclaredDown = $0 { true } else { false } })
    }

    @Test("a success breaks the streak: fail, fail, success, fail, fail is not DOWN")
    func brokenStreak() {
        let (state, changes) = run([(0, .failure), (30, .failure), (60, .success), (90, .failure), (120, .failure)])
        #expect(state.health == .degraded)
        // The first window closed at the success; a second one is open and not declared.
        #expect(changes.filter { if case .windowClosed = $0 { true } else { false } }.count == 1)
        #expect(state.openWindow?.failureCount == 2)
        #expect(state.openWindow?.declaredDownAt == nil)
    }

    @Test("failures spread wider than the window are not DOWN")
    func spreadFailures() {
        let (state, _) = run([(0, .failure), (170, .failure), (340, .failure)])
        #expect(state.health == .degraded)
        // But three later failures that fit do count.
        let (later, _) = run([(0, .failure), (170, .failure), (340, .failure), (400, .failure)])
        #expect(later.health == .down)
    }

    @Test("recovery needs recoveryThreshold consecutive successes, then the window closes")
    func recovery() {
        var steps: [(TimeInterval, ObservationOutcome)] = [(0, .failure), (10, .failure), (20, .failure)]
        for index in 1...4 { steps.append((20 + Double(index) * 10, .success)) }
        #expect(run(steps).0.health == .down)
        steps.append((80, .success))
        let (state, changes) = run(steps)
        #expect(state.health == .up)
        #expect(state.openWindow == nil)
        let closed = changes.compactMap { if case .windowClosed(let window) = $0 { window } else { nil } }
        #expect(closed.count == 1)
        #expect(closed.first?.declaredDownAt != nil)
    }

    @Test("reports that arrive out of order are placed by observedAt")
    func outOfOrder() {
        // A success observed between the failures arrives last: the streak was broken after all.
        let (state, _) = run([(0, .failure), (60, .failure), (120, .failure), (30, .success)])
        #expect(state.health == .degraded)
        // A late failure that completes a streak in the past makes the hub DOWN.
        let (late, _) = run([(0, .failure), (120, .failure), (60, .failure)])
        #expect(late.health == .down)
    }

    @Test("a silent source turns stale: unknown, never failed")
    func staleness() {
        var (state, _) = run([(0, .success)])
        #expect(state.health == .up)
        _ = HealthTracker.refresh(&state, policy: policy, now: t0.addingTimeInterval(policy.staleAfter + 1))
        #expect(state.health == .unknown)
        var (down, _) = run([(0, .failure), (1, .failure), (2, .failure)])
        _ = HealthTracker.refresh(&down, policy: policy, now: t0.addingTimeInterval(600))
        #expect(down.health == .unknown)
        #expect(down.openWindow != nil)
    }

    @Test("quorum: with quorum 2, one DOWN source leaves the hub degraded")
    func quorum() {
        var policy = Policy()
        policy.quorum = 2
        var state = HubHealthState(deploymentId: "d", hubId: "h")
        let ids = CountingIDs()
        for (index, source) in ["probe:a", "probe:b"].enumerated() {
            for step in 0..<3 {
                let at = t0.addingTimeInterval(Double(step))
                _ = HealthTracker.apply(
                    ProbeObservation(source: source, outcome: .failure, observedAt: at, evidence: "r\(step)"),
                    to: &state, policy: policy, now: at, ids: ids)
            }
            #expect(state.health == (index == 0 ? .degraded : .down))
        }
    }

    func alert(
        kind: AlertKind, condition: AlertCondition = .fired, rule: String = "r", incident: String? = nil,
        regions: [String] = [], service: String = "Azure Machine Learning", health: String? = nil,
        cause: String? = nil, isTest: Bool = false
    ) -> NormalizedAlert {
        NormalizedAlert(
            key: "k-\(kind.rawValue)-\(rule)", rule: rule, schema: .common, kind: kind, condition: condition,
            observedAt: t0, isTest: isTest,
            serviceHealth: incident.map {
                ServiceHealthDetails(
                    incidentType: $0, trackingId: "T1", stage: condition == .fired ? "Active" : "Resolved", title: nil,
                    communicationId: nil, impactedServices: [ImpactedService(service: service, regions: regions)])
            },
            resourceHealth: health.map {
                ResourceHealthDetails(
                    currentHealthStatus: $0, previousHealthStatus: nil, cause: cause, type: nil, title: nil)
            })
    }

    @Test("Azure signals: what makes a hub DOWN and what is only evidence")
    func azureSignals() {
        let hub = HubDefinition(
            id: "east", region: "eastus", regionName: "East US", role: .primary, endpoint: "", resources: [])
        var policy = Policy()
        policy.alerts.serviceHealthServices = ["Azure Machine Learning"]
        policy.alerts.failoverRules = ["hub-availability"]
        let cases: [(NormalizedAlert, AzureSignal.Effect)] = [
            (alert(kind: .serviceHealth, incident: "Incident", regions: ["East US"]), .down),
            (alert(kind: .serviceHealth, incident: "Incident", regions: ["West US"]), .degraded),
            (alert(kind: .serviceHealth, incident: "Incident", regions: ["East US"], service: "Azure SQL"), .degraded),
            (alert(kind: .serviceHealth, incident: "Maintenance", regions: ["East US"]), .degraded),
            (alert(kind: .serviceHealth, condition: .resolved, incident: "Incident", regions: ["East US"]), .clear),
            (alert(kind: .resourceHealth, health: "Unavailable", cause: "PlatformInitiated"), .down),
            (alert(kind: .resourceHealth, health: "Unavailable", cause: "UserInitiated"), .degraded),
            (alert(kind: .metric, rule: "hub-availability"), .down),
            (alert(kind: .metric, rule: "HUB-AVAILABILITY"), .down),
            (alert(kind: .metric, rule: "cpu-high"), .degraded),
            (alert(kind: .metric, condition: .resolved, rule: "hub-availability"), .clear),
            (alert(kind: .metric, rule: "hub-availability", isTest: true), .degraded),
        ]
        for (alert, effect) in cases {
            let signal = AzureSignal.from(alert, alertId: "a", hub: hub, policy: policy, receivedAt: t0)
            #expect(
                signal.effect == effect,
                "\(alert.kind) \(alert.rule ?? "") \(alert.serviceHealth?.impactedServices ?? [])")
        }
    }

    @Test("an Azure DOWN holds until the same source resolves")
    func azureDownUntilResolved() {
        var state = HubHealthState(deploymentId: "d", hubId: "h")
        let ids = CountingIDs()
        let down = AzureSignal(
            source: "azure:x", label: "x", effect: .down, at: t0, evidence: "alert:1", rule: "failover-rule")
        _ = HealthTracker.apply(down, to: &state, policy: policy, now: t0, ids: ids)
        #expect(state.health == .down)
        #expect(state.openWindow?.declaredDownAt == t0)
        var cleared = down
        cleared.effect = .clear
        cleared.at = t0.addingTimeInterval(60)
        _ = HealthTracker.apply(cleared, to: &state, policy: policy, now: cleared.at, ids: ids)
        #expect(state.health == .up)
        #expect(state.openWindow == nil)
        // A late retry of the DOWN delivery changes nothing.
        let late = HealthTracker.apply(down, to: &state, policy: policy, now: t0.addingTimeInterval(70), ids: ids)
        #expect(late == [.lateSampleIgnored(source: "azure:x")])
        #expect(state.health == .up)
    }
}

@Suite("Health tracker under an alert storm")
struct AlertStormTests {
    @Test("thousands of distinct alerts keep every DOWN source but bounded evidence")
    func boundedState() {
        var state = HubHealthState(deploymentId: "d", hubId: "h")
        let t0 = Timestamp.parse("2026-11-28T10:00:00Z")!
        let ids = CountingIDs()
        let down = AzureSignal(
            source: "azure:down", label: "x", effect: .down, at: t0, evidence: "alert:0", rule: "failover-rule")
        _ = HealthTracker.apply(down, to: &state, policy: Policy(), now: t0, ids: ids)
        for index in 1...2000 {
            let at = t0.addingTimeInterval(Double(index))
            let signal = AzureSignal(
                source: "azure:\(index)", label: "cpu", effect: .degraded, at: at, evidence: "alert:\(index)",
                rule: "alert")
            _ = HealthTracker.apply(signal, to: &state, policy: Policy(), now: at, ids: ids)
        }
        #expect(state.azure.count == 17)
        #expect(state.azure["azure:down"]?.effect == .down)
        #expect(state.azure["azure:2000"] != nil)
        #expect(state.health == .down)
        #expect(state.openWindow?.evidence.count ?? 0 <= 50)
    }
}

@Suite("Health state persistence")
struct HealthStatePersistenceTests {
    @Test("the fast writer produces JSON that the Codable reader reads back to the same state")
    func roundTrip() throws {
        var state = HubHealthState(deploymentId: "d", hubId: "h")
        let ids = CountingIDs()
        let t0 = Timestamp.parse("2026-11-28T10:00:00.123Z")!
        for (index, outcome) in [ObservationOutcome.failure, .degraded, .failure, .failure, .failure, .success]
            .enumerated()
        {
            let at = t0.addingTimeInterval(Double(index) * 1.0001)
            _ = HealthTracker.apply(
                ProbeObservation(
                    source: "probe:\(index % 2)", outcome: outcome, observedAt: at, evidence: "report:\(index)"),
                to: &state, policy: Policy(), now: at, ids: ids)
        }
        _ = HealthTracker.apply(
            AzureSignal(
                source: "azure:k", label: "rule \"x\"", effect: .down, at: t0, evidence: "alert:1",
                rule: "failover-rule"),
            to: &state, policy: Policy(), now: t0, ids: ids)
        state.readiness = [
            ReadinessCheck.storageReplication.rawValue: ReadinessObservation(
                status: .notReady, detail: "lag 45 min", observedAt: t0.addingTimeInterval(0.25), reportId: "r1"),
            ReadinessCheck.endpoints.rawValue: ReadinessObservation(
                status: .ready, detail: nil, observedAt: t0, reportId: "r2"),
        ]
        #expect(state.openWindow != nil)
        let text = state.jsonValue().canonicalString()
        let decoded = try JSONDecoder().decode(HubHealthState.self, from: Data(text.utf8))
        #expect(decoded == state)
        #expect(try HubHealthState(json: JSONValue.decode(Data(text.utf8))) == state)
        let empty = HubHealthState(deploymentId: "d", hubId: "h")
        #expect(try JSONDecoder().decode(HubHealthState.self, from: empty.jsonValue().canonicalData()) == empty)
        #expect(try HubHealthState(json: empty.jsonValue()) == empty)
    }

    @Test("the fast reader reads what JSONEncoder wrote, and refuses a state missing what it needs")
    func fastReaderReadsCodableOutput() throws {
        var state = HubHealthState(deploymentId: "d", hubId: "h")
        let at = Timestamp.parse("2026-11-28T10:00:00.123Z")!
        _ = HealthTracker.apply(
            ProbeObservation(source: "probe", outcome: .failure, observedAt: at, evidence: "report:1"),
            to: &state, policy: Policy(), now: at, ids: CountingIDs())
        state.readiness = [
            "compute_quota": ReadinessObservation(status: .unknown, detail: nil, observedAt: at, reportId: "r")
        ]
        let written = try JSONValue.decode(JSONEncoder().encode(state))
        #expect(try HubHealthState(json: written) == state)
        guard case .object(var members) = written else { Issue.record("not an object"); return }
        // Each refusal names the member it could not read.
        func refusal(_ members: [String: JSONValue]) -> String? {
            do {
                _ = try HubHealthState(json: .object(members))
                return nil
            } catch DecodingError.dataCorrupted(let context) {
                return context.debugDescription
            } catch {
                return "\(error)"
            }
        }
        var broken = members
        broken["hubId"] = nil
        #expect(refusal(broken) == "hub state.hubId is missing")
        broken["hubId"] = .number(1)
        #expect(refusal(broken) == "hub state.hubId is not a string")
        broken = members
        broken["azure"] = .number(1)
        #expect(refusal(broken) == "hub state.azure is not an object")
        members["readiness"] = .object(["compute_quota": .object(["status": .string("unknown")])])
        #expect(refusal(members) == "readiness observation.observedAt is missing")
    }
}
