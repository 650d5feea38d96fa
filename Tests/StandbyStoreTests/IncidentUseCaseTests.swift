import Foundation
import StandbyApp
import StandbyCore
import StandbyPrimitives
import StandbyStore
import StandbyTestSupport
import Testing

/// Around an incident, on both stores: notifications queued with their cause, the incident's
/// trigger and resolve, maintenance windows through the API, and the acknowledgement deadline.
@Suite("Use cases: notifications, maintenance, ack deadline")
struct IncidentUseCaseTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    let deployment = DeploymentDefinition(
        id: "prod", pattern: .activePassive,
        hubs: [
            HubDefinition(
                id: "east", region: "eastus", regionName: "East US", role: .primary, endpoint: "", resources: []),
            HubDefinition(
                id: "west", region: "westus", regionName: "West US", role: .secondary, endpoint: "", resources: []),
        ],
        policy: {
            var policy = Policy()
            policy.failback.mode = .automatic
            policy.failback.stableFor = 60
            policy.recoveryThreshold = 1
            policy.alerts.failoverRules = ["hub-down"]
            return policy
        }())

    func report(_ id: String, _ outcome: ObservationOutcome, at: Date, hub: String = "east") -> HealthReportInput {
        HealthReportInput(
            id: id, deploymentId: "prod", hubId: hub, source: "probe:westeurope", outcome: outcome, observedAt: at,
            latencyMs: nil, statusCode: outcome == .failure ? 503 : 200, detail: nil)
    }

    func plane(_ kind: StoreUnderTest, configure: (inout IncidentSettings) -> Void = { _ in }) async throws
        -> (ControlPlane, AnyObject)
    {
        let (store, keepAlive) = try await kind.make()
        var incident = IncidentSettings()
        incident.routing = NotificationRouting(routes: [
            NotificationRoute(events: nil, receivers: ["chat"], deployments: nil),
            NotificationRoute(events: [.failover, .noTarget, .resolved], receivers: ["pager"], deployments: ["prod"]),
        ])
        configure(&incident)
        return (
            ControlPlane(store: store, topology: Topology(deployments: [deployment]), incident: incident), keepAlive
        )
    }

    func failOver(_ plane: ControlPlane) async throws -> FailoverEventView {
        for index in 0..<3 {
            let at = t0.addingTimeInterval(Double(index) * 60)
            _ = try await plane.recordReports([report("f\(index)", .failure, at: at)], actor: "probe", now: at)
        }
        return try #require(try await plane.failoverEvents(deployment: "prod", page: PageRequest()).items.first)
    }

    func all(_ plane: ControlPlane) async throws -> [NotificationView] {
        try await plane.notifications(status: nil, deploymentId: nil, page: PageRequest(limit: 1000)).items.reversed()
    }

    @Test(
        "a failover is one notification per receiver, with the summary a person reads; the failback resolves the incident",
        arguments: StoreUnderTest.allCases)
    func failoverAndResolve(_ kind: StoreUnderTest) async throws {
        let (plane, keepAlive) = try await plane(kind)
        defer { withExtendedLifetime(keepAlive) {} }
        let event = try await failOver(plane)
        let afterFailover = try await all(plane)
        #expect(afterFailover.map(\.receiver) == ["chat", "pager"])
        let trigger = try #require(afterFailover.first)
        #expect(trigger.event == .failover)
        #expect(trigger.action == .trigger && trigger.severity == .critical)
        #expect(trigger.summary.hasPrefix("prod: failed over from east to west — east is DOWN: 3 consecutive failures"))
        #expect(trigger.summary.contains("from probe:westeurope"))
        #expect(trigger.incidentKey == "standby/prod/\(event.id)")
        #expect(trigger.details["failoverEventId"] == event.id)
        #expect(trigger.status == .pending)
        #expect(afterFailover.allSatisfy { $0.incidentKey == trigger.incidentKey })

        // Commands acknowledged, east healthy and stable: the automatic failback resolves the incident.
        var now = t0.addingTimeInterval(200)
        for command in event.commands {
            _ = try await plane.acknowledge(
                commandId: command.id, outcome: .succeeded, detail: nil, actor: "app", now: now)
        }
        _ = try await plane.recordReports([report("ok1", .success, at: now)], actor: "probe", now: now)
        now = now.addingTimeInterval(61 + 600)
        _ = try await plane.recordReports([report("ok2", .success, at: now)], actor: "probe", now: now)
        try await plane.tick(now: now)
        let notifications = try await all(plane)
        let failback = try #require(notifications.first { $0.event == .failback })
        #expect(failback.summary.hasPrefix("prod: failed back from west to east"))
        #expect(failback.receiver == "chat")
        let resolves = notifications.filter { $0.event == .resolved }
        #expect(resolves.map(\.receiver) == ["chat", "pager"])
        #expect(resolves.allSatisfy { $0.action == .resolve && $0.incidentKey == trigger.incidentKey })
        // Resolved once: more time passing adds nothing.
        try await plane.tick(now: now.addingTimeInterval(5))
        #expect(try await all(plane).count == notifications.count)
    }

    @Test("an operator's pause with until and its expiry are told", arguments: StoreUnderTest.allCases)
    func pauseAndExpiry(_ kind: StoreUnderTest) async throws {
        let (plane, keepAlive) = try await plane(kind)
        defer { withExtendedLifetime(keepAlive) {} }
        _ = try await plane.operatorAction(
            deploymentId: "prod",
            request: OperatorRequest(action: .pause, reason: "change freeze", actor: "alice", until: t0 + 120), now: t0)
        let view = try #require(try await plane.deployment(id: "prod", now: t0))
        #expect(view.automation.paused && view.automation.pausedUntil == Timestamp.format(t0 + 120))
        try await plane.tick(now: t0 + 119)
        #expect(try await plane.deployment(id: "prod", now: t0 + 119)?.automation.paused == true)
        try await plane.tick(now: t0 + 120)
        #expect(try await plane.deployment(id: "prod", now: t0 + 120)?.automation.paused == false)
        let events = try await all(plane).map(\.event)
        #expect(events == [.automationPaused, .pauseExpired])
        #expect(
            try await all(plane).first?.summary
                == "prod: automation paused by alice until \(Timestamp.format(t0 + 120)) — change freeze")
    }

    @Test(
        "a maintenance window declared through the API suppresses the failover, then releases it when ended early",
        arguments: StoreUnderTest.allCases)
    func maintenanceThroughTheAPI(_ kind: StoreUnderTest) async throws {
        let (plane, keepAlive) = try await plane(kind)
        defer { withExtendedLifetime(keepAlive) {} }
        let request = MaintenanceRequest(
            deploymentId: "prod", hubs: ["east"], startsAt: t0 - 60, endsAt: t0 + 3600, reason: "patching east")
        let (window, created) = try await plane.scheduleMaintenance(request, actor: "ops", now: t0 - 60)
        #expect(created)
        let again = try await plane.scheduleMaintenance(request, actor: "ops", now: t0 - 30)
        #expect(!again.created && again.window.id == window.id)
        try await plane.tick(now: t0 - 59)
        for index in 0..<3 {
            let at = t0.addingTimeInterval(Double(index) * 60)
            _ = try await plane.recordReports([report("f\(index)", .failure, at: at)], actor: "probe", now: at)
        }
        #expect(try await plane.failoverEvents(deployment: "prod", page: PageRequest()).items.isEmpty)
        let view = try #require(try await plane.deployment(id: "prod", now: t0 + 121))
        #expect(view.serving == ["east"])
        #expect(view.automation.maintenanceWindows == [window.id])
        #expect(view.automation.reason?.contains("maintenance window \(window.id)") == true)
        let active = try await plane.maintenanceWindows(
            deploymentId: "prod", active: true, now: t0, page: PageRequest())
        #expect(active.items.map(\.window.id) == [window.id])

        let ended = try await plane.endMaintenance(id: window.id, actor: "ops", now: t0 + 130)
        #expect(ended.endedAt == t0 + 130)
        try await plane.tick(now: t0 + 131)
        let decided = try #require(try await plane.failoverEvents(deployment: "prod", page: PageRequest()).items.first)
        #expect(decided.fromHub == "east" && decided.toHub == "west")
        #expect(
            try await plane.maintenanceWindows(deploymentId: "prod", active: true, now: t0 + 131, page: PageRequest())
                .items.isEmpty)
        let events = try await all(plane).map(\.event)
        #expect(events.prefix(2) == [.maintenanceStarted, .maintenanceEnded])
        #expect(events.contains(.failover))
    }

    /// A delivery of the failover rule `hub-down` for the east hub, fired at `at`.
    func hubDown(_ id: String, at: Date) -> (IncomingDelivery, DeliveryContent) {
        let body = JSONValue.object([
            "schemaId": .string("azureMonitorCommonAlertSchema"),
            "data": .object([
                "essentials": .object([
                    "alertId": .string("/subscriptions/s/providers/Microsoft.AlertsManagement/alerts/\(id)"),
                    "alertRule": .string("hub-down"), "severity": .string("Sev0"), "signalType": .string("Metric"),
                    "monitorCondition": .string("Fired"), "monitoringService": .string("Platform"),
                    "alertTargetIDs": .array([]), "firedDateTime": .string(Timestamp.format(at)),
                ]),
                "alertContext": .object([:]),
            ]),
        ]).canonicalData()
        var content = DeliveryContent.classify(body, topology: Topology(deployments: []))
        if case .alert(let alert, _) = content {
            content = .alert(alert, hubs: [HubReference(deploymentId: "prod", hubId: "east")])
        }
        let delivery = IncomingDelivery(
            id: "delivery-\(id)", receivedAt: at, remoteAddress: "10.0.0.1", contentType: "application/json",
            body: body)
        return (delivery, content)
    }

    @Test(
        "an alert delivered during a maintenance window of the API moves nothing; once the window ended early, the next one fails over",
        arguments: StoreUnderTest.allCases)
    func maintenanceHoldsDeliveredAlerts(_ kind: StoreUnderTest) async throws {
        let (plane, keepAlive) = try await plane(kind)
        defer { withExtendedLifetime(keepAlive) {} }
        let request = MaintenanceRequest(
            deploymentId: "prod", hubs: ["east"], startsAt: t0 - 60, endsAt: t0 + 3600, reason: "patching east")
        let (window, _) = try await plane.scheduleMaintenance(request, actor: "ops", now: t0 - 60)
        let (first, firstContent) = hubDown("first", at: t0)
        #expect(try await plane.ingest(first, content: firstContent).outcome == .new)
        #expect(try await plane.failoverEvents(deployment: "prod", page: PageRequest()).items.isEmpty)
        let held = try #require(try await plane.deployment(id: "prod", now: t0 + 1))
        #expect(held.serving == ["east"])
        #expect(held.automation.maintenanceWindows == [window.id])

        _ = try await plane.endMaintenance(id: window.id, actor: "ops", now: t0 + 130)
        let (second, secondContent) = hubDown("second", at: t0 + 140)
        #expect(try await plane.ingest(second, content: secondContent).outcome == .new)
        let decided = try #require(try await plane.failoverEvents(deployment: "prod", page: PageRequest()).items.first)
        #expect(decided.fromHub == "east" && decided.toHub == "west")
        #expect(try await plane.deployment(id: "prod", now: t0 + 141)?.automation.maintenanceWindows == [])
    }

    @Test(
        "commands nobody acknowledges expire at the deadline: the event fails, automation may move again, people are told",
        arguments: StoreUnderTest.allCases)
    func ackDeadline(_ kind: StoreUnderTest) async throws {
        let (plane, keepAlive) = try await plane(kind) { $0.ackDeadline = 300 }
        defer { withExtendedLifetime(keepAlive) {} }
        let event = try await failOver(plane)
        let decidedAt = t0.addingTimeInterval(120)
        #expect(try await plane.expireOverdueCommands(now: decidedAt.addingTimeInterval(299)) == 0)
        #expect(try await plane.expireOverdueCommands(now: decidedAt.addingTimeInterval(300)) == 2)
        let settled = try #require(try await plane.failoverEvent(id: event.id))
        #expect(settled.status == .failed)
        #expect(settled.commands.allSatisfy { $0.status == .expired })
        let view = try #require(try await plane.deployment(id: "prod", now: decidedAt.addingTimeInterval(300)))
        #expect(view.automation.openFailoverEventId == nil)
        #expect(try await all(plane).filter { $0.event == .commandExpired }.count == 2)
        await #expect(throws: StoreError.self) {
            try await plane.acknowledge(
                commandId: event.commands[0].id, outcome: .succeeded, detail: nil, actor: "app", now: decidedAt + 400)
        }
        #expect(try await plane.expireOverdueCommands(now: decidedAt.addingTimeInterval(900)) == 0)
    }

    @Test(
        "the outbox: delivered and failed attempts are recorded; only due rows are handed out",
        arguments: StoreUnderTest.allCases)
    func outbox(_ kind: StoreUnderTest) async throws {
        let (plane, keepAlive) = try await plane(kind)
        defer { withExtendedLifetime(keepAlive) {} }
        _ = try await failOver(plane)
        let now = t0.addingTimeInterval(130)
        let due = try await plane.deliverableNotifications(now: now, limit: 10)
        #expect(due.map(\.receiver) == ["chat", "pager"])
        try await plane.recordNotificationDelivered(id: due[0].id, now: now)
        try await plane.recordNotificationFailure(id: due[1].id, error: "HTTP 503", nextAttemptAt: now + 30, now: now)
        #expect(try await plane.deliverableNotifications(now: now + 1, limit: 10).isEmpty)
        let retry = try await plane.deliverableNotifications(now: now + 30, limit: 10)
        #expect(retry.map(\.id) == [due[1].id])
        #expect(retry.first?.attempts == 1 && retry.first?.lastError == "HTTP 503")
        try await plane.recordNotificationFailure(id: due[1].id, error: "HTTP 400", nextAttemptAt: nil, now: now + 30)
        let failed = try await plane.notifications(status: .failed, deploymentId: "prod", page: PageRequest()).items
        #expect(failed.map(\.id) == [due[1].id])
        let delivered = try await plane.notifications(status: .delivered, deploymentId: nil, page: PageRequest()).items
        #expect(delivered.first?.deliveredAt == Timestamp.format(now))
    }

    @Test(
        "a drill on either store: held after acknowledgement, failed back, told, and no incident",
        arguments: StoreUnderTest.allCases)
    func drill(_ kind: StoreUnderTest) async throws {
        let (plane, keepAlive) = try await plane(kind)
        defer { withExtendedLifetime(keepAlive) {} }
        _ = try await plane.recordReports(
            [report("e", .success, at: t0), report("w", .success, at: t0, hub: "west")], actor: "probe", now: t0)
        let started = try await plane.startDrill(
            deploymentId: "prod", request: DrillRequest(reason: "DR test", actor: "ops", holdFor: 60), now: t0 + 1)
        #expect(started.status == .running)
        let failover = try #require(try await plane.failoverEvent(id: started.failoverEventId))
        #expect(failover.trigger == "drill")
        for command in failover.commands {
            _ = try await plane.acknowledge(
                commandId: command.id, outcome: .succeeded, detail: nil, actor: "app", now: t0 + 11)
        }
        #expect(try await plane.drill(id: started.id)?.recoverySeconds == 10)
        try await plane.tick(now: t0 + 71)
        let failingBack = try #require(try await plane.drill(id: started.id))
        let failbackId = try #require(failingBack.failbackEventId)
        for command in try #require(try await plane.failoverEvent(id: failbackId)).commands {
            _ = try await plane.acknowledge(
                commandId: command.id, outcome: .succeeded, detail: nil, actor: "app", now: t0 + 75)
        }
        let done = try #require(try await plane.drill(id: started.id))
        #expect(done.status == .completed && done.failbackRecoverySeconds == 4)
        #expect(try await plane.drills(deploymentId: "prod", page: PageRequest()).items.map(\.id) == [started.id])
        let events = try await all(plane)
        #expect(events.map(\.event) == [.drillStarted, .drillFinished])
        #expect(
            events.last?.summary.hasPrefix(
                "prod: drill \(started.id) completed — failover acknowledged in 10s, failback in 4s") == true)
    }
}
