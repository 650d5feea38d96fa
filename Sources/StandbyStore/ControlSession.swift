import Foundation
import GRDB
import StandbyCore
import StandbyPrimitives
import Synchronization

/// One transaction's worth of control-plane work: loads tracker and engine state on demand, applies
/// the pure core, and collects what must be written. `save()` writes it all; a rehearsal (the
/// read-only tick check) just looks at `hasChanges`.
struct ControlSession {
    let db: Database
    let chain: EventChain
    let topology: Topology
    let ids: any IDSource
    /// The latest time any of the session's signals were received at.
    var now: Date
    /// For the resubmissions a move queues.
    var maxAttempts = QueueSettings().maxAttempts
    /// Decoded hub states of this process, trusted while their stored revision matches.
    var cache: HubStateCache?

    private var hubStates: [HubReference: HubHealthState] = [:]
    private var dirtyHubs: Set<HubReference> = []
    private var deploymentStates: [String: DeploymentState] = [:]
    private var loadedDeploymentStates: [String: DeploymentState] = [:]
    private var touchedDeployments: [String] = []
    private var windows: [String: FailureWindow] = [:]
    private var plans: [(plan: FailoverPlan, superseding: String?)] = []
    private var settledEvents: [(id: String, status: FailoverEventStatus)] = []
    private var events: [EventDraft] = []

    init(db: Database, chain: EventChain, topology: Topology, ids: any IDSource, now: Date) {
        self.db = db
        self.chain = chain
        self.topology = topology
        self.ids = ids
        self.now = now
    }

    var hasChanges: Bool { !events.isEmpty || !plans.isEmpty || !windows.isEmpty }

    // MARK: Loading

    static func loadHubState(_ hub: HubReference, db: Database, cache: HubStateCache? = nil) throws -> HubHealthState {
        guard
            let revision = try String.fetchOne(
                try db.cachedStatement(sql: "SELECT revision FROM hub_health WHERE deployment_id = ? AND hub_id = ?"),
                arguments: [hub.deploymentId, hub.hubId])
        else { return HubHealthState(deploymentId: hub.deploymentId, hubId: hub.hubId) }
        if let cached = cache?.state(for: hub, revision: revision) { return cached }
        let text =
            try String.fetchOne(
                try db.cachedStatement(sql: "SELECT state FROM hub_health WHERE deployment_id = ? AND hub_id = ?"),
                arguments: [hub.deploymentId, hub.hubId]) ?? "{}"
        let state = try JSONDecoder().decode(HubHealthState.self, from: Data(text.utf8))
        cache?.store(state, for: hub, revision: revision)
        return state
    }

    static func loadDeploymentState(_ deployment: DeploymentDefinition, db: Database) throws -> DeploymentState {
        guard
            let text = try String.fetchOne(
                try db.cachedStatement(sql: "SELECT state FROM deployment_state WHERE deployment_id = ?"),
                arguments: [deployment.id])
        else { return DeploymentState.initial(for: deployment) }
        var state = try JSONDecoder().decode(DeploymentState.self, from: Data(text.utf8))
        // A hub removed from the file can no longer serve.
        state.serving = state.serving.filter { deployment.hub($0) != nil }
        if state.serving.isEmpty { state.serving = DeploymentState.initial(for: deployment).serving }
        return state
    }

    private mutating func hubState(_ hub: HubReference) throws -> HubHealthState {
        if let state = hubStates[hub] { return state }
        let state = try Self.loadHubState(hub, db: db, cache: cache)
        hubStates[hub] = state
        return state
    }

    private mutating func deploymentState(_ deployment: DeploymentDefinition) throws -> DeploymentState {
        if let state = deploymentStates[deployment.id] { return state }
        let state = try Self.loadDeploymentState(deployment, db: db)
        deploymentStates[deployment.id] = state
        loadedDeploymentStates[deployment.id] = state
        return state
    }

    private mutating func touch(_ deploymentId: String) {
        if !touchedDeployments.contains(deploymentId) { touchedDeployments.append(deploymentId) }
    }

    // MARK: Signals

    mutating func record(_ report: HealthReportInput, actor: String) throws -> ReportReceipt {
        // RETURNING gives the stored report's id: this one's when new, the first one's for a duplicate.
        let storedId =
            try String.fetchOne(
                try db.cachedStatement(
                    sql: """
                        INSERT INTO health_reports
                            (id, deployment_id, hub_id, source, outcome, observed_at, received_at, latency_ms, status_code,
                             detail, actor)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                        ON CONFLICT (hub_id, source, observed_at) DO UPDATE SET duplicate_count = duplicate_count + 1
                        RETURNING id
                        """),
                arguments: [
                    report.id, report.deploymentId, report.hubId, report.source, report.outcome.rawValue,
                    Timestamp.format(report.observedAt), Timestamp.format(now), report.latencyMs, report.statusCode,
                    report.detail, actor,
                ]) ?? report.id
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

    mutating func decide(_ deployment: DeploymentDefinition) throws {
        var state = try deploymentState(deployment)
        let openBefore = state.openEventId
        let decisions = DecisionEngine(deployment: deployment, ids: ids)
            .evaluate(&state, health: try statuses(deployment), now: now)
        deploymentStates[deployment.id] = state
        handle(decisions, deployment: deployment, openBefore: openBefore)
    }

    mutating func decideAll() throws {
        for deployment in topology.deployments { try decide(deployment) }
    }

    mutating func decideAndSave() throws {
        for deploymentId in touchedDeployments {
            if let deployment = topology.deployment(deploymentId) {
                try refresh(deployment)
                try decide(deployment)
            }
        }
        try save()
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
                ])))
        handle(decisions, deployment: deployment, openBefore: openBefore)
        for case .move(let plan) in decisions { return plan.id }
        return nil
    }

    private mutating func handle(_ decisions: [Decision], deployment: DeploymentDefinition, openBefore: String?) {
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

    // MARK: Acknowledgements

    mutating func acknowledge(commandId: String, outcome: CommandAckOutcome, detail: String?, actor: String) throws {
        guard
            let row = try Row.fetchOne(
                try db.cachedStatement(
                    sql: "SELECT status, ack_outcome, failover_event_id, deployment_id, hub FROM commands WHERE id = ?"),
                arguments: [commandId])
        else { throw StoreError.notFound("command \(commandId)") }
        let status: String = row["status"]
        switch CommandStatus(rawValue: status) {
        case .succeeded, .failed:
            guard row["ack_outcome"] == outcome.rawValue else {
                throw StoreError.conflict("command \(commandId) was already acknowledged as \(status)")
            }
            try db.cachedStatement(sql: "UPDATE commands SET ack_duplicates = ack_duplicates + 1 WHERE id = ?").execute(
                arguments: [commandId])
            return
        case .dryRun:
            throw StoreError.conflict("command \(commandId) was recorded in dry-run mode and is never dispatched")
        case .superseded:
            throw StoreError.conflict("command \(commandId) was superseded by a later failover")
        case .pending, .delivered, nil:
            break
        }
        let at = Timestamp.format(now)
        try db.cachedStatement(
            sql: """
                UPDATE commands SET status = ?, ack_outcome = ?, ack_detail = ?, ack_actor = ?, acked_at = ?,
                    updated_at = ? WHERE id = ?
                """
        ).execute(arguments: [outcome.rawValue, outcome.rawValue, detail, actor, at, at, commandId])
        let eventId: String = row["failover_event_id"]
        let deploymentId: String = row["deployment_id"]
        events.append(
            EventDraft(
                type: "command.acknowledged", at: now, deploymentId: deploymentId, hub: row["hub"], actor: actor,
                data: .object([
                    "commandId": .string(commandId), "failoverEventId": .string(eventId),
                    "outcome": .string(outcome.rawValue), "detail": .optional(detail),
                ])))
        let statuses = try String.fetchAll(
            try db.cachedStatement(sql: "SELECT status FROM commands WHERE failover_event_id = ?"), arguments: [eventId]
        ).map(CommandStatus.init(rawValue:))
        let settled: FailoverEventStatus?
        if statuses.contains(.failed) {
            settled = .failed
        } else if statuses.allSatisfy({ $0 == .succeeded }) {
            settled = .completed
        } else {
            settled = nil
        }
        guard let settled,
            try String.fetchOne(
                try db.cachedStatement(sql: "SELECT status FROM failover_events WHERE id = ?"), arguments: [eventId])
                == FailoverEventStatus.open.rawValue
        else { return }
        settledEvents.append((eventId, settled))
        events.append(
            EventDraft(
                type: "failover.\(settled.rawValue)", at: now, deploymentId: deploymentId, actor: actor,
                data: .object(["failoverEventId": .string(eventId)])))
        if let deployment = topology.deployment(deploymentId) {
            var state = try deploymentState(deployment)
            DecisionEngine.settle(eventId: eventId, in: &state)
            deploymentStates[deploymentId] = state
            touch(deploymentId)
        }
    }

    // MARK: Writing

    mutating func save() throws {
        let at = Timestamp.format(now)
        let encoder = JSONEncoder()
        for hub in dirtyHubs.sorted() {
            guard let state = hubStates[hub] else { continue }
            // A fresh random revision, never reused: a rolled-back write cannot be mistaken for a stored one.
            let revision = String(UInt64.random(in: 1...UInt64.max), radix: 36)
            try db.cachedStatement(
                sql: """
                    INSERT INTO hub_health (deployment_id, hub_id, health, state, revision, updated_at)
                    VALUES (?, ?, ?, ?, ?, ?)
                    ON CONFLICT (deployment_id, hub_id) DO UPDATE SET health = excluded.health, state = excluded.state,
                        revision = excluded.revision, updated_at = excluded.updated_at
                    """
            ).execute(arguments: [
                hub.deploymentId, hub.hubId, state.health.rawValue, state.jsonValue().compactString(), revision, at,
            ])
            cache?.store(state, for: hub, revision: revision)
        }
        for (id, state) in deploymentStates.sorted(by: { $0.key < $1.key }) where state != loadedDeploymentStates[id] {
            try db.cachedStatement(
                sql: """
                    INSERT INTO deployment_state (deployment_id, state, updated_at) VALUES (?, ?, ?)
                    ON CONFLICT (deployment_id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at
                    """
            ).execute(arguments: [id, String(decoding: try encoder.encode(state), as: UTF8.self), at])
        }
        for window in windows.values.sorted(by: { $0.openedAt < $1.openedAt }) {
            try db.cachedStatement(
                sql: """
                    INSERT INTO failure_windows
                        (id, deployment_id, hub_id, opened_at, first_failure_at, last_failure_at, failure_count, sources,
                         evidence, declared_down_at, closed_at, updated_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (id) DO UPDATE SET first_failure_at = excluded.first_failure_at,
                        last_failure_at = excluded.last_failure_at, failure_count = excluded.failure_count,
                        sources = excluded.sources, evidence = excluded.evidence,
                        declared_down_at = excluded.declared_down_at, closed_at = excluded.closed_at,
                        updated_at = excluded.updated_at
                    """
            ).execute(arguments: [
                window.id, window.deploymentId, window.hubId, Timestamp.format(window.openedAt),
                Timestamp.format(window.firstFailureAt), Timestamp.format(window.lastFailureAt), window.failureCount,
                JSONValue.strings(window.sources).canonicalString(),
                JSONValue.strings(window.evidence).canonicalString(),
                window.declaredDownAt.map(Timestamp.format), window.closedAt.map(Timestamp.format), at,
            ])
        }
        for (eventId, status) in settledEvents {
            try db.cachedStatement(
                sql: "UPDATE failover_events SET status = ?, settled_at = ? WHERE id = ? AND status = 'open'"
            ).execute(arguments: [status.rawValue, at, eventId])
        }
        for (plan, superseding) in plans {
            if let superseding {
                try db.cachedStatement(
                    sql:
                        "UPDATE failover_events SET status = 'superseded', settled_at = ? WHERE id = ? AND status = 'open'"
                ).execute(arguments: [at, superseding])
                try db.cachedStatement(
                    sql: """
                        UPDATE commands SET status = 'superseded', updated_at = ?
                        WHERE failover_event_id = ? AND status IN ('pending', 'delivered')
                        """
                ).execute(arguments: [at, superseding])
            }
            let status: FailoverEventStatus = plan.commands.isEmpty ? .recorded : (plan.dryRun ? .dryRun : .open)
            try db.cachedStatement(
                sql: """
                    INSERT INTO failover_events
                        (id, deployment_id, kind, trigger, from_hub, to_hub, reason, rule, evidence, actor, dry_run, status,
                         created_at, settled_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """
            ).execute(arguments: [
                plan.id, plan.deploymentId, plan.kind.rawValue, plan.trigger.rawValue, plan.fromHub, plan.toHub,
                plan.reason, plan.rule, JSONValue.strings(plan.evidence).canonicalString(), plan.actor, plan.dryRun,
                status.rawValue, at, status == .open ? nil : at,
            ])
            for (position, command) in plan.commands.enumerated() {
                try db.cachedStatement(
                    sql: """
                        INSERT INTO commands
                            (id, deployment_id, failover_event_id, position, kind, hub, from_hub, to_hub, parameters,
                             status, created_at, updated_at, next_attempt_at)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                        """
                ).execute(arguments: [
                    command.id, plan.deploymentId, plan.id, position, command.kind.rawValue, command.hub,
                    command.fromHub, command.toHub,
                    JSONValue.object(command.parameters.mapValues(JSONValue.string)).canonicalString(),
                    CommandStatus.initial(dryRun: plan.dryRun).rawValue, at, at, plan.dryRun ? nil : at,
                ])
            }
            try JobQueue.interrupt(for: plan, in: db, chain: chain, ids: ids, now: now, maxAttempts: maxAttempts)
        }
        for event in events { try chain.append(event, in: db) }
        events = []
        plans = []
        windows = [:]
        settledEvents = []
        dirtyHubs = []
        loadedDeploymentStates = deploymentStates
    }
}

/// This process's decoded copies of hub states, each valid for one stored revision.
public final class HubStateCache: Sendable {
    private let entries = Mutex<[HubReference: (revision: String, state: HubHealthState)]>([:])

    public init() {}

    func state(for hub: HubReference, revision: String) -> HubHealthState? {
        entries.withLock { entries in
            guard let entry = entries[hub], entry.revision == revision else { return nil }
            return entry.state
        }
    }

    func store(_ state: HubHealthState, for hub: HubReference, revision: String) {
        entries.withLock { $0[hub] = (revision, state) }
    }
}
