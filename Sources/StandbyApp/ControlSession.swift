import Foundation
import StandbyCore
import StandbyPrimitives

/// One unit of work's worth of control-plane work: loads tracker and engine state on demand,
/// applies the pure core, and collects what must be written. `save(in:)` writes it all; a rehearsal (the
/// read-only tick check) just looks at `hasChanges`.
struct ControlSession {
    /// Where state is loaded from: the unit of work's transaction, or a snapshot for a rehearsal.
    let reads: any ControlReads
    let topology: Topology
    let ids: any IDSource
    /// The latest time any of the session's signals were received at.
    var now: Date
    /// For the resubmissions a move queues.
    var maxAttempts = QueueSettings().maxAttempts
    /// Who hears of what, and the config's maintenance windows.
    var incident = IncidentSettings()

    private var hubStates: [HubReference: HubHealthState] = [:]
    private var dirtyHubs: Set<HubReference> = []
    private var deploymentStates: [String: DeploymentState] = [:]
    private var loadedDeploymentStates: [String: DeploymentState] = [:]
    private var touchedDeployments: [String] = []
    private var windows: [String: FailureWindow] = [:]
    private var plans: [(plan: FailoverPlan, superseding: String?)] = []
    private var settledEvents: [(id: String, status: FailoverEventStatus)] = []
    private var events: [EventDraft] = []
    private var notifications: [NotificationDraft] = []
    /// Drill records changed by the session, by id.
    private var drills: [String: DrillView] = [:]

    init(reads: any ControlReads, topology: Topology, ids: any IDSource, now: Date) {
        self.reads = reads
        self.topology = topology
        self.ids = ids
        self.now = now
    }

    var hasChanges: Bool { !events.isEmpty || !plans.isEmpty || !windows.isEmpty || !drills.isEmpty }

    /// The plans decided so far and not yet saved (what a preview shows).
    var decidedPlans: [FailoverPlan] { plans.map(\.plan) }

    // MARK: Loading

    /// A deployment's routing state: the stored one, or its initial state. A hub removed from the
    /// file can no longer serve.
    static func loadDeploymentState(_ deployment: DeploymentDefinition, from reads: any ControlReads) throws
        -> DeploymentState
    {
        guard var state = try reads.deploymentState(deployment.id) else {
            return DeploymentState.initial(for: deployment)
        }
        state.serving = state.serving.filter { deployment.hub($0) != nil }
        if state.serving.isEmpty { state.serving = DeploymentState.initial(for: deployment).serving }
        return state
    }

    private mutating func hubState(_ hub: HubReference) throws -> HubHealthState {
        if let state = hubStates[hub] { return state }
        let state = try reads.hubState(hub)
        hubStates[hub] = state
        return state
    }

    private mutating func deploymentState(_ deployment: DeploymentDefinition) throws -> DeploymentState {
        if let state = deploymentStates[deployment.id] { return state }
        let state = try Self.loadDeploymentState(deployment, from: reads)
        deploymentStates[deployment.id] = state
        loadedDeploymentStates[deployment.id] = state
        return state
    }

    private mutating func touch(_ deploymentId: String) {
        if !touchedDeployments.contains(deploymentId) { touchedDeployments.append(deploymentId) }
    }

    // MARK: Signals

    mutating func record(_ report: HealthReportInput, actor: String, in transaction: any ControlTransaction) throws
        -> ReportReceipt
    {
        let storedId = try transaction.storeReport(report, receivedAt: now, actor: actor)
        let receipt = ReportReceipt(
            id: storedId, hub: report.hubId, source: report.source, observedAt: Timestamp.format(report.observedAt),
            status: storedId == report.id ? "accepted" : "duplicate")
        guard storedId == report.id else { return receipt }
        events.append(
            EventDraft(
                type: "report.accepted", at: now, deploymentId: report.deploymentId, hub: report.hubId, actor: actor,
                data: .object([
                    "reportId": .string(report.id), "source": .string(report.source),
                    "outcome": .string(report.outcome.rawValue),
                    "observedAt": .string(Timestamp.format(report.observedAt)),
                ])))
        let hub = HubReference(deploymentId: report.deploymentId, hubId: report.hubId)
        guard let deployment = topology.deployment(hub.deploymentId) else { return receipt }
        var state = try hubState(hub)
        let changes = HealthTracker.apply(
            ProbeObservation(
                source: report.source, outcome: report.outcome, observedAt: report.observedAt,
                evidence: "report:\(report.id)"),
            to: &state, policy: deployment.policy, now: now, ids: ids)
        store(state, changes: changes, for: hub)
        return receipt
    }

    /// Stores a readiness report raw, then, when it is the newest of its check, makes it the
    /// hub's readiness (a change of status goes in the history).
    mutating func record(_ report: ReadinessReportInput, actor: String, in transaction: any ControlTransaction) throws
        -> ReadinessReceipt
    {
        let storedId = try transaction.storeReadinessReport(report, receivedAt: now, actor: actor)
        let receipt = ReadinessReceipt(
            id: storedId, hub: report.hubId, check: report.check.rawValue,
            observedAt: Timestamp.format(report.observedAt), status: storedId == report.id ? "accepted" : "duplicate")
        guard storedId == report.id else { return receipt }
        let hub = HubReference(deploymentId: report.deploymentId, hubId: report.hubId)
        guard topology.deployment(hub.deploymentId) != nil else { return receipt }
        var state = try hubState(hub)
        var readiness = state.readiness ?? [:]
        let previous = readiness[report.check.rawValue]
        guard previous.map({ $0.observedAt <= report.observedAt }) ?? true else { return receipt }
        readiness[report.check.rawValue] = ReadinessObservation(
            status: report.status, detail: report.detail, observedAt: report.observedAt, reportId: report.id)
        state.readiness = readiness
        store(state, changes: [], for: hub)
        if previous?.status != report.status {
            events.append(
                EventDraft(
                    type: "readiness.changed", at: now, deploymentId: hub.deploymentId, hub: hub.hubId, actor: actor,
                    data: .object([
                        "check": .string(report.check.rawValue), "from": .optional(previous?.status.rawValue),
                        "to": .string(report.status.rawValue), "detail": .optional(report.detail),
                        "reportId": .string(report.id), "observedAt": .string(Timestamp.format(report.observedAt)),
                    ])))
        }
        return receipt
    }

    mutating func apply(_ signal: AzureSignal, to hub: HubReference) throws {
        guard let deployment = topology.deployment(hub.deploymentId) else { return }
        var state = try hubState(hub)
        let changes = HealthTracker.apply(signal, to: &state, policy: deployment.policy, now: now, ids: ids)
        store(state, changes: changes, for: hub)
    }

    private mutating func store(_ state: HubHealthState, changes: [HealthChange], for hub: HubReference) {
        hubStates[hub] = state
        dirtyHubs.insert(hub)
        touch(hub.deploymentId)
        for change in changes {
            switch change {
            case .healthChanged(let from, let to):
                events.append(
                    EventDraft(
                        type: "hub.health_changed", at: now, deploymentId: hub.deploymentId, hub: hub.hubId,
                        actor: "standby", data: .object(["from": .string(from.rawValue), "to": .string(to.rawValue)])))
            case .windowOpened(let window):
                windows[window.id] = window
                events.append(windowEvent("window.opened", window))
            case .windowUpdated(let window):
                windows[window.id] = window
            case .windowDeclaredDown(let window):
                windows[window.id] = window
                events.append(windowEvent("window.declared_down", window))
            case .windowClosed(let window):
                windows[window.id] = window
                events.append(windowEvent("window.closed", window))
            case .lateSampleIgnored(let source):
                events.append(
                    EventDraft(
                        type: "report.too_late", at: now, deploymentId: hub.deploymentId, hub: hub.hubId,
                        actor: "standby", data: .object(["source": .string(source)])))
            }
        }
    }

    private func windowEvent(_ type: String, _ window: FailureWindow) -> EventDraft {
        EventDraft(
            type: type, at: now, deploymentId: window.deploymentId, hub: window.hubId, actor: "standby",
            data: .object([
                "windowId": .string(window.id), "failureCount": .number(Double(window.failureCount)),
                "sources": .strings(window.sources),
                "firstFailureAt": .string(Timestamp.format(window.firstFailureAt)),
                "lastFailureAt": .string(Timestamp.format(window.lastFailureAt)),
            ]))
    }

    // MARK: Time and decisions

    mutating func refresh(_ deployment: DeploymentDefinition) throws {
        for hub in deployment.hubs {
            let reference = HubReference(deploymentId: deployment.id, hubId: hub.id)
            var state = try hubState(reference)
            let before = state
            let changes = HealthTracker.refresh(&state, policy: deployment.policy, now: now)
            if state != before || !changes.isEmpty { store(state, changes: changes, for: reference) }
        }
    }

    mutating func refreshAll() throws {
        for deployment in topology.deployments { try refresh(deployment) }
    }

    private mutating func statuses(_ deployment: DeploymentDefinition) throws -> [String: HubStatus] {
        var statuses: [String: HubStatus] = [:]
        for hub in deployment.hubs {
            let state = try hubState(HubReference(deploymentId: deployment.id, hubId: hub.id))
            statuses[hub.id] = HubStatus(state, policy: deployment.policy, now: now)
        }
        return statuses
    }

    /// The maintenance windows of `deployment` in effect now: the config's and the API's.
    func activeMaintenance(_ deployment: DeploymentDefinition) throws -> [MaintenanceWindow] {
        (incident.maintenance.active(deploymentId: deployment.id, at: now)
            + (try reads.activeMaintenanceWindows(deploymentId: deployment.id, at: now))).sorted { $0.id < $1.id }
    }

    mutating func decide(_ deployment: DeploymentDefinition) throws {
        var state = try deploymentState(deployment)
        let openBefore = state.openEventId
        let health = try statuses(deployment)
        let decisions = DecisionEngine(deployment: deployment, ids: ids)
            .evaluate(&state, health: health, maintenance: try activeMaintenance(deployment), now: now)
        deploymentStates[deployment.id] = state
        try handle(decisions, deployment: deployment, openBefore: openBefore)
        notify(decisions, deployment: deployment, health: health)
    }

    mutating func decideAll() throws {
        for deployment in topology.deployments { try decide(deployment) }
    }

    mutating func decideAndSave(in transaction: any ControlTransaction) throws {
        for deploymentId in touchedDeployments {
            if let deployment = topology.deployment(deploymentId) {
                try refresh(deployment)
                try decide(deployment)
            }
        }
        try save(in: transaction)
    }

    mutating func operatorAction(_ request: OperatorRequest, on deployment: DeploymentDefinition) throws -> String? {
        var state = try deploymentState(deployment)
        let openBefore = state.openEventId
        let health = try statuses(deployment)
        let decisions: [Decision]
        do throws(OperatorRefusal) {
            decisions = try DecisionEngine(deployment: deployment, ids: ids)
                .apply(request, to: &state, health: health, now: now)
        } catch {
            throw StoreError.conflict(error.reason)
        }
        deploymentStates[deployment.id] = state
        touch(deployment.id)
        events.append(
            EventDraft(
                type: "operator.\(request.action.rawValue)", at: now, deploymentId: deployment.id, hub: request.hub,
                actor: request.actor,
                data: .object([
                    "reason": .string(request.reason), "force": .bool(request.force),
                    "allowUnhealthyTarget": .bool(request.allowUnhealthyTarget),
                    "until": .optional(request.until.map(Timestamp.format)),
                ])))
        try handle(decisions, deployment: deployment, openBefore: openBefore)
        switch request.action {
        case .pause:
            let until = request.until.map { " until \(Timestamp.format($0))" } ?? " until an operator resumes"
            notify(
                .automationPaused, deployment,
                "\(deployment.id): automation paused by \(request.actor)\(until) — \(request.reason)", .warning,
                details: ["actor": request.actor, "reason": request.reason])
        case .resume:
            notify(
                .automationResumed, deployment,
                "\(deployment.id): automation resumed by \(request.actor) — \(request.reason)", .info,
                details: ["actor": request.actor, "reason": request.reason])
        case .failover, .failback:
            break
        }
        notify(decisions, deployment: deployment, health: health)
        for case .move(let plan) in decisions { return plan.id }
        return nil
    }

    private mutating func handle(_ decisions: [Decision], deployment: DeploymentDefinition, openBefore: String?)
        throws
    {
        for decision in decisions {
            switch decision {
            case .move(let plan):
                let superseding = openBefore.flatMap {
                    $0 != plan.id && !plan.commands.isEmpty && !plan.dryRun ? $0 : nil
                }
                plans.append((plan, superseding))
                events.append(
                    EventDraft(
                        type: "failover.decided", at: now, deploymentId: deployment.id, hub: plan.fromHub,
                        actor: plan.actor,
                        data: .object([
                            "failoverEventId": .string(plan.id), "kind": .string(plan.kind.rawValue),
                            "trigger": .string(plan.trigger.rawValue), "from": .optional(plan.fromHub),
                            "to": .optional(plan.toHub), "reason": .string(plan.reason), "rule": .string(plan.rule),
                            "evidence": .strings(plan.evidence), "dryRun": .bool(plan.dryRun),
                        ])))
                for command in plan.commands {
                    events.append(
                        EventDraft(
                            type: "command.emitted", at: now, deploymentId: deployment.id, hub: command.hub,
                            actor: plan.actor,
                            data: .object([
                                "commandId": .string(command.id), "failoverEventId": .string(plan.id),
                                "kind": .string(command.kind.rawValue),
                                "status": .string(CommandStatus.initial(dryRun: plan.dryRun).rawValue),
                            ])))
                }
            case .hold(let reason):
                events.append(
                    EventDraft(
                        type: "automation.held", at: now, deploymentId: deployment.id, actor: "standby",
                        data: .object(["reason": .string(reason)])))
            case .noTarget(let reason):
                events.append(
                    EventDraft(
                        type: "automation.held", at: now, deploymentId: deployment.id, actor: "standby",
                        data: .object(["reason": .string(reason), "noTarget": .bool(true)])))
            case .suppressed(let reason, let windowId):
                events.append(
                    EventDraft(
                        type: "automation.suppressed", at: now, deploymentId: deployment.id, actor: "standby",
                        data: .object(["reason": .string(reason), "maintenanceWindowId": .string(windowId)])))
            case .pauseExpired(let reason):
                events.append(
                    EventDraft(
                        type: "automation.pause_expired", at: now, deploymentId: deployment.id, actor: "standby",
                        data: .object(["pauseReason": .optional(reason)])))
            case .maintenanceStarted(let window):
                events.append(maintenanceEvent("maintenance.started", window, deployment))
            case .maintenanceEnded(let window):
                events.append(maintenanceEvent("maintenance.ended", window, deployment))
            case .drill(let change):
                try record(change, deployment: deployment)
            case .holdCleared:
                events.append(
                    EventDraft(
                        type: "automation.released", at: now, deploymentId: deployment.id, actor: "standby",
                        data: .object([:])))
            case .failbackReady(let reason):
                events.append(
                    EventDraft(
                        type: "failback.ready", at: now, deploymentId: deployment.id, actor: "standby",
                        data: .object(["reason": .string(reason)])))
            }
        }
    }

    private func maintenanceEvent(_ type: String, _ window: MaintenanceWindow, _ deployment: DeploymentDefinition)
        -> EventDraft
    {
        EventDraft(
            type: type, at: now, deploymentId: deployment.id, actor: "standby",
            data: .object([
                "maintenanceWindowId": .string(window.id), "hubs": .strings(window.coveredHubs(of: deployment)),
                "startsAt": .string(Timestamp.format(window.startsAt)),
                "endsAt": .string(Timestamp.format(window.effectiveEnd)), "reason": .string(window.reason),
            ]))
    }

    // MARK: Drills

    private mutating func drillRecord(_ id: String) throws -> DrillView {
        if let record = drills[id] { return record }
        guard let record = try reads.drill(id: id) else { throw StoreError.notFound("drill \(id)") }
        return record
    }

    private mutating func record(_ change: DrillChange, deployment: DeploymentDefinition) throws {
        let id: String
        let type: String
        var data: [String: JSONValue]
        switch change {
        case .holding(let drillId, let until):
            (id, type, data) = (drillId, "drill.holding", ["until": .string(Timestamp.format(until))])
        case .failingBack(let drillId, let eventId, let abortReason):
            (id, type, data) = (
                drillId, "drill.failing_back",
                ["failbackEventId": .string(eventId), "abortReason": .optional(abortReason)]
            )
        case .finished(let drillId, let completed, let reason):
            (id, type, data) = (
                drillId, "drill.finished",
                ["status": .string(completed ? "completed" : "aborted"), "reason": .optional(reason)]
            )
        }
        var drill = try drillRecord(id)
        drill.record(change, now: now)
        drills[id] = drill
        data["drillId"] = .string(id)
        if case .finished = change {
            data["recoverySeconds"] = drill.recoverySeconds.map(JSONValue.number) ?? .null
            data["failbackRecoverySeconds"] = drill.failbackRecoverySeconds.map(JSONValue.number) ?? .null
        }
        events.append(
            EventDraft(type: type, at: now, deploymentId: deployment.id, actor: "standby", data: .object(data)))
    }

    /// Starts a drill on `deployment`: the failover is decided now; the engine holds and fails back.
    mutating func startDrill(_ request: DrillRequest, on deployment: DeploymentDefinition) throws -> DrillView {
        var state = try deploymentState(deployment)
        let openBefore = state.openEventId
        let health = try statuses(deployment)
        let id = ids.next()
        let plan: FailoverPlan
        do throws(OperatorRefusal) {
            plan = try DecisionEngine(deployment: deployment, ids: ids)
                .startDrill(id: id, request, state: &state, health: health, now: now)
        } catch {
            throw StoreError.conflict(error.reason)
        }
        deploymentStates[deployment.id] = state
        touch(deployment.id)
        guard let drillState = state.drill else { throw StoreError.conflict("the drill did not start") }
        let drill = DrillView(drillState, deploymentId: deployment.id, request: request, now: now)
        drills[id] = drill
        events.append(
            EventDraft(
                type: "drill.started", at: now, deploymentId: deployment.id, actor: request.actor,
                data: .object([
                    "drillId": .string(id), "failoverEventId": .string(plan.id), "reason": .string(request.reason),
                    "holdForSeconds": .number(request.holdFor), "interruptJobs": .bool(request.interruptJobs),
                ])))
        try handle([.move(plan)], deployment: deployment, openBefore: openBefore)
        notify(
            .drillStarted, deployment,
            "\(deployment.id): drill \(id) started by \(request.actor): practice failover from \(drillState.fromHub) to "
                + "\(drillState.toHub), held \(Int(request.holdFor))s, then failed back — \(request.reason)", .info,
            details: ["drillId": id, "failoverEventId": plan.id])
        return drill
    }

    mutating func abortDrill(id: String, reason: String, actor: String) throws -> DrillView {
        let drill = try drillRecord(id)
        guard let deployment = topology.deployment(drill.deploymentId) else {
            throw StoreError.notFound("deployment \(drill.deploymentId)")
        }
        var state = try deploymentState(deployment)
        guard state.drill?.id == id else {
            throw StoreError.conflict("drill \(id) is \(drill.status.rawValue), not running")
        }
        let openBefore = state.openEventId
        let decisions: [Decision]
        do throws(OperatorRefusal) {
            decisions = try DecisionEngine(deployment: deployment, ids: ids)
                .abortDrill(reason: "aborted by \(actor): \(reason)", state: &state, now: now)
        } catch {
            throw StoreError.conflict(error.reason)
        }
        deploymentStates[deployment.id] = state
        touch(deployment.id)
        try handle(decisions, deployment: deployment, openBefore: openBefore)
        return try drillRecord(id)
    }

    // MARK: Notifications

    private mutating func notify(
        _ event: NotificationEvent, _ deployment: DeploymentDefinition, _ summary: String,
        _ severity: NotificationSeverity, action: NotificationAction = .trigger, details: [String: String] = [:]
    ) {
        let incident = deploymentStates[deployment.id]?.incidentId
        notifications.append(
            NotificationDraft(
                event: event, deploymentId: deployment.id, summary: summary, severity: severity,
                // Outside an incident, each notification is its own (a PagerDuty alert per event).
                incidentKey: "standby/\(deployment.id)/\(incident ?? ids.next())", action: action,
                details: details.merging(["deployment": deployment.id]) { current, _ in current }, at: now))
    }

    /// Tells people what `decisions` did, and opens or resolves the deployment's incident: one
    /// opens with a move away from where the policy wants the deployment (or no target for a
    /// DOWN hub) and resolves when it serves from there again with no serving hub DOWN.
    private mutating func notify(
        _ decisions: [Decision], deployment: DeploymentDefinition, health: [String: HubStatus]
    ) {
        func openIncident(_ id: String) {
            if deploymentStates[deployment.id]?.incidentId == nil { deploymentStates[deployment.id]?.incidentId = id }
        }
        for decision in decisions {
            switch decision {
            case .move(let plan):
                // A drill's moves are announced by the drill's own notifications.
                guard plan.trigger != .drill, let (event, summary, severity) = NotificationText.move(plan) else {
                    continue
                }
                if !plan.dryRun, event == .failover || event == .noTarget { openIncident(plan.id) }
                var details = [
                    "failoverEventId": plan.id, "kind": plan.kind.rawValue, "trigger": plan.trigger.rawValue,
                ]
                details["from"] = plan.fromHub
                details["to"] = plan.toHub
                notify(event, deployment, summary, severity, details: details)
            case .noTarget(let reason):
                openIncident(ids.next())
                notify(.noTarget, deployment, "\(deployment.id): no failover target — \(reason)", .critical)
            case .failbackReady(let reason):
                notify(.failbackReady, deployment, "\(deployment.id): ready to fail back — \(reason)", .warning)
            case .pauseExpired(let reason):
                notify(
                    .pauseExpired, deployment,
                    "\(deployment.id): pause expired; automation is active again"
                        + (reason.map { " (paused for: \($0))" } ?? ""), .info)
            case .maintenanceStarted(let window):
                notify(
                    .maintenanceStarted, deployment,
                    "\(deployment.id): maintenance window \(window.id) started for "
                        + "\(window.coveredHubs(of: deployment).joined(separator: ", ")) until "
                        + "\(Timestamp.format(window.effectiveEnd)) — \(window.reason)", .info,
                    details: ["maintenanceWindowId": window.id])
            case .maintenanceEnded(let window):
                notify(
                    .maintenanceEnded, deployment,
                    "\(deployment.id): maintenance window \(window.id) ended — \(window.reason)", .info,
                    details: ["maintenanceWindowId": window.id])
            case .drill(.finished(let drillId, let completed, let reason)):
                let drill = drills[drillId]
                let times = [
                    drill?.recoverySeconds.map { "failover acknowledged in \(Int($0.rounded()))s" },
                    drill?.failbackRecoverySeconds.map { "failback in \(Int($0.rounded()))s" },
                ].compactMap { $0 }
                notify(
                    .drillFinished, deployment,
                    "\(deployment.id): drill \(drillId) \(completed ? "completed" : "aborted")"
                        + (reason.map { " (\($0))" } ?? "")
                        + (times.isEmpty ? "" : " — " + times.joined(separator: ", ")),
                    completed ? .info : .warning, details: ["drillId": drillId])
            case .hold, .holdCleared, .suppressed, .drill:
                break
            }
        }
        guard let state = deploymentStates[deployment.id], state.incidentId != nil else { return }
        let wanted = DeploymentState.initial(for: deployment).serving
        let servingIsUp = state.serving.allSatisfy { (health[$0]?.health ?? .unknown) != .down }
        guard Set(state.serving) == Set(wanted), servingIsUp, !state.outageOpen else { return }
        notify(
            .resolved, deployment,
            "\(deployment.id): resolved — \(state.serving.joined(separator: ", ")) serving again", .info,
            action: .resolve)
        deploymentStates[deployment.id]?.incidentId = nil
    }

    // MARK: Acknowledgements

    mutating func acknowledge(
        commandId: String, outcome: CommandAckOutcome, detail: String?, actor: String,
        in transaction: any ControlTransaction
    ) throws {
        guard let command = try transaction.command(id: commandId) else {
            throw StoreError.notFound("command \(commandId)")
        }
        switch command.status {
        case .succeeded, .failed:
            guard command.ackOutcome == outcome.rawValue else {
                throw StoreError.conflict("command \(commandId) was already acknowledged as \(command.status.rawValue)")
            }
            try transaction.countDuplicateAcknowledgement(commandId: commandId)
            return
        case .dryRun:
            throw StoreError.conflict("command \(commandId) was recorded in dry-run mode and is never dispatched")
        case .superseded:
            throw StoreError.conflict("command \(commandId) was superseded by a later failover")
        case .expired:
            throw StoreError.conflict(
                "command \(commandId) expired: it was not acknowledged within the ack deadline and its failover "
                    + "event failed; an operator decides what happens next")
        case .pending, .delivered:
            break
        }
        try transaction.recordAcknowledgement(
            commandId: commandId, outcome: outcome, detail: detail, actor: actor, at: now)
        let eventId = command.failoverEventId
        let deploymentId = command.deploymentId
        events.append(
            EventDraft(
                type: "command.acknowledged", at: now, deploymentId: deploymentId, hub: command.hub, actor: actor,
                data: .object([
                    "commandId": .string(commandId), "failoverEventId": .string(eventId),
                    "outcome": .string(outcome.rawValue), "detail": .optional(detail),
                ])))
        if outcome == .failed, let deployment = topology.deployment(deploymentId) {
            notify(
                .commandFailed, deployment,
                "\(deploymentId): command \(command.kind) on \(command.hub) failed"
                    + (detail.map { " — \($0)" } ?? ""), .error,
                details: ["commandId": commandId, "failoverEventId": eventId, "hub": command.hub])
        }
        try settleIfDone(eventId: eventId, deploymentId: deploymentId, actor: actor, in: transaction)
    }

    /// Gives up on a command nobody acknowledged within the deadline: it becomes `expired`, its
    /// failover event fails (so it no longer blocks the next move) and people are told.
    mutating func expire(_ command: CommandView, deadline: TimeInterval, in transaction: any ControlTransaction) throws
    {
        try transaction.expireCommand(id: command.id, at: now)
        events.append(
            EventDraft(
                type: "command.expired", at: now, deploymentId: command.deploymentId, hub: command.hub,
                actor: "standby",
                data: .object([
                    "commandId": .string(command.id), "failoverEventId": .string(command.failoverEventId),
                    "status": .string(command.status.rawValue), "ackDeadlineSeconds": .number(deadline),
                ])))
        if let deployment = topology.deployment(command.deploymentId) {
            notify(
                .commandExpired, deployment,
                "\(command.deploymentId): command \(command.kind) on \(command.hub) not acknowledged within "
                    + "\(Int(deadline))s (\(command.status.rawValue)); given up, failover event "
                    + "\(command.failoverEventId) failed", .error,
                details: ["commandId": command.id, "failoverEventId": command.failoverEventId, "hub": command.hub])
        }
        try settleIfDone(
            eventId: command.failoverEventId, deploymentId: command.deploymentId, actor: "standby", in: transaction)
    }

    /// Settles a failover event once its commands say how it ended.
    private mutating func settleIfDone(
        eventId: String, deploymentId: String, actor: String, in transaction: any ControlTransaction
    ) throws {
        let statuses = try transaction.commandStatuses(failoverEventId: eventId)
        let settled: FailoverEventStatus?
        if statuses.contains(.failed) || statuses.contains(.expired) {
            settled = .failed
        } else if statuses.allSatisfy({ $0 == .succeeded }) {
            settled = .completed
        } else {
            settled = nil
        }
        guard let settled, try transaction.failoverEvent(id: eventId)?.status == .open else { return }
        settledEvents.append((eventId, settled))
        events.append(
            EventDraft(
                type: "failover.\(settled.rawValue)", at: now, deploymentId: deploymentId, actor: actor,
                data: .object(["failoverEventId": .string(eventId)])))
        if let deployment = topology.deployment(deploymentId) {
            var state = try deploymentState(deployment)
            DecisionEngine.settle(eventId: eventId, in: &state)
            let openBefore = state.openEventId
            let decisions = DecisionEngine(deployment: deployment, ids: ids)
                .drillEventSettled(eventId: eventId, succeeded: settled == .completed, state: &state, now: now)
            deploymentStates[deploymentId] = state
            touch(deploymentId)
            try handle(decisions, deployment: deployment, openBefore: openBefore)
            notify(decisions, deployment: deployment, health: try self.statuses(deployment))
        }
    }

    // MARK: Writing

    /// Writes what the session collected: hub states, routing states, windows, settled and new
    /// failover events with their commands, the jobs a move interrupts, and the history.
    mutating func save(in transaction: any ControlTransaction) throws {
        for hub in dirtyHubs.sorted() {
            guard let state = hubStates[hub] else { continue }
            try transaction.saveHubState(state, for: hub, at: now)
        }
        for (id, state) in deploymentStates.sorted(by: { $0.key < $1.key }) where state != loadedDeploymentStates[id] {
            try transaction.saveDeploymentState(state, deploymentId: id, at: now)
        }
        for window in windows.values.sorted(by: { $0.openedAt < $1.openedAt }) {
            try transaction.saveFailureWindow(window, at: now)
        }
        for (eventId, status) in settledEvents {
            try transaction.settleFailoverEvent(id: eventId, status: status, at: now)
        }
        // The jobs a move interrupts come first in the history, as they always have.
        var interruptions: [EventDraft] = []
        for (plan, superseding) in plans {
            if let superseding { try transaction.supersedeFailoverEvent(id: superseding, at: now) }
            try transaction.insertFailoverEvent(plan, status: FailoverEventStatus.initial(for: plan), at: now)
            try JobQueue.interrupt(
                for: plan, in: transaction, ids: ids, now: now, maxAttempts: maxAttempts, events: &interruptions)
        }
        for event in interruptions + events { try transaction.append(event) }
        for draft in notifications {
            for receiver in incident.routing.receivers(for: draft.event, deploymentId: draft.deploymentId) {
                try transaction.insertNotification(
                    NotificationView(id: ids.next(), receiver: receiver, draft: draft, now: now))
            }
        }
        for drill in drills.values.sorted(by: { $0.id < $1.id }) { try transaction.saveDrill(drill) }
        drills = [:]
        notifications = []
        events = []
        plans = []
        windows = [:]
        settledEvents = []
        dirtyHubs = []
        loadedDeploymentStates = deploymentStates
    }
}
