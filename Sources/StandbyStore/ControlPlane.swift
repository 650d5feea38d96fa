import Foundation
import GRDB
import Logging
import StandbyCore
import StandbyPrimitives

/// The imperative shell around the health tracker and the decision engine: inside one write
/// transaction it loads their state, feeds them signals and time, and persists what they return
/// (windows, failover events, commands, history). A signal and the decisions it caused commit
/// together or not at all.
public final class ControlPlane: Sendable {
    public let database: StandbyDatabase
    public let topology: Topology
    let ids: any IDSource
    let resubmissionAttempts: Int
    let hubCache = HubStateCache()

    public init(
        database: StandbyDatabase, topology: Topology, ids: any IDSource = TimeOrderedIDSource(),
        resubmissionAttempts: Int = QueueSettings().maxAttempts
    ) {
        self.database = database
        self.topology = topology
        self.ids = ids
        self.resubmissionAttempts = resubmissionAttempts
    }

    func session(_ db: Database, now: Date, ids: (any IDSource)? = nil) -> ControlSession {
        var session = ControlSession(db: db, chain: database.chain, topology: topology, ids: ids ?? self.ids, now: now)
        session.maxAttempts = resubmissionAttempts
        session.cache = hubCache
        return session
    }

    // MARK: Signals

    /// Stores a batch of validated reports atomically and runs the tracker on them; the engine
    /// decides once for the group-commit batch, before it commits.
    /// Reports per commit of a large batch: each part is a bulk write of the group-commit writer,
    /// so a reporter posting 1000 reports at once never holds webhook deliveries behind it.
    public static let reportsPerCommit = 50

    /// Records a validated batch. A batch larger than `reportsPerCommit` is committed in parts, in
    /// order; if storage fails part-way, the caller is answered 503 and may send the whole batch
    /// again: reports are idempotent on hub + source + observedAt, so the parts already committed
    /// come back as duplicates.
    public func recordReports(_ reports: [HealthReportInput], actor: String, now: Date) async throws -> [ReportReceipt]
    {
        guard reports.count > 1 else {
            return try await recordPart(reports, lane: .interactive, actor: actor, now: now)
        }
        var receipts: [ReportReceipt] = []
        receipts.reserveCapacity(reports.count)
        for start in stride(from: 0, to: reports.count, by: Self.reportsPerCommit) {
            let part = Array(reports[start..<min(start + Self.reportsPerCommit, reports.count)])
            receipts += try await recordPart(part, lane: part.count > 8 ? .bulk : .interactive, actor: actor, now: now)
        }
        return receipts
    }

    private func recordPart(_ reports: [HealthReportInput], lane: WriteLane, actor: String, now: Date) async throws
        -> [ReportReceipt]
    {
        try await database.groupCommit.write(lane: lane, weight: reports.count) { (batch: WriteBatch) in
            try self.withBatchSession(batch, now: now, inputs: reports.map { "report:\($0.id)" }) { session in
                try reports.map { try session.record($0, actor: actor) }
            }
        }
    }

    /// Ingests one webhook delivery, raw first: the delivery and its alert are stored, then the
    /// alert's signals are applied to the hubs it concerns, in the same group-commit write (the
    /// engine decides once for the batch, before it commits). Processing that fails for any reason
    /// but storage trouble leaves the raw delivery stored and the failure in the history; storage
    /// trouble fails the whole write, so that Azure retries.
    public func ingest(_ delivery: IncomingDelivery, content: DeliveryContent) async throws -> IngestResult {
        let now = delivery.receivedAt
        return try await database.groupCommit.write { [topology, ids, database] (batch: WriteBatch) in
            let db = batch.db
            let result = try SQLiteAlertRepository.ingest(
                delivery, content: content, in: db, chain: database.chain, ids: ids)
            guard let alert = result.alert, !result.hubs.isEmpty else { return result }
            do {
                try db.withinSavepoint {
                    try self.withBatchSession(batch, now: now, inputs: ["delivery:\(result.deliveryId)"]) { session in
                        for hub in result.hubs {
                            guard let deployment = topology.deployment(hub.deploymentId),
                                let definition = deployment.hub(hub.hubId)
                            else { continue }
                            let signal = AzureSignal.from(
                                alert, alertId: result.alertId, hub: definition, policy: deployment.policy,
                                receivedAt: now)
                            try session.apply(signal, to: hub)
                        }
                    }
                }
            } catch {
                let classified = StoreError.classify(error)
                if case StoreError.unavailable = classified { throw classified }
                try database.chain.append(
                    EventDraft(
                        type: "delivery.processing_failed", at: delivery.receivedAt, actor: "standby",
                        data: .object([
                            "deliveryId": .string(delivery.id), "alertId": .string(result.alertId),
                            "error": .string(String(describing: error)),
                        ])), in: db)
            }
            return result
        }
    }

    /// Runs `body` on the session this plane shares within `batch`, for the signals of `inputs`
    /// (named in the history if processing them fails); if `body` throws, the session is left as it was.
    private func withBatchSession<T>(
        _ batch: WriteBatch, now: Date, inputs: [String], _ body: (inout ControlSession) throws -> T
    ) throws -> T {
        let shared = batch.participant(of: self) { SharedControlSession(self.session(batch.db, now: now)) }
        let before = shared.session
        // Each write's signals at its own time; the batch decides at the latest of them.
        shared.session.now = now
        do {
            let result = try body(&shared.session)
            shared.session.now = max(before.now, now)
            shared.inputs += inputs
            return result
        } catch {
            shared.session = before
            throw error
        }
    }

    /// Time passing: staleness, failback stability, cooldown expiry. Writes only when something changed.
    @discardableResult
    public func tick(now: Date) async throws -> Bool {
        let changed = try await StoreError.mapping {
            try await database.pool.read { db in
                var session = self.session(db, now: now, ids: DryRunIDs())
                try session.refreshAll()
                try session.decideAll()
                return session.hasChanges
            }
        }
        guard changed else { return false }
        try await StoreError.mapping {
            try await database.pool.write { db in
                var session = self.session(db, now: now)
                try session.refreshAll()
                try session.decideAll()
                try session.save()
            }
        }
        return true
    }

    // MARK: Operators

    public func operatorAction(deploymentId: String, request: OperatorRequest, now: Date) async throws
        -> OperatorOutcome
    {
        guard let deployment = topology.deployment(deploymentId) else {
            throw StoreError.notFound("deployment \(deploymentId)")
        }
        let planId: String? = try await StoreError.mapping {
            try await database.pool.write { db in
                var session = self.session(db, now: now)
                try session.refresh(deployment)
                let planId = try session.operatorAction(request, on: deployment)
                try session.decideAndSave()
                return planId
            }
        }
        if let planId, let event = try await failoverEvent(id: planId) { return .moved(event) }
        guard let view = try await self.deployment(id: deploymentId, now: now) else {
            throw StoreError.notFound("deployment \(deploymentId)")
        }
        return .updated(view)
    }

    /// Records the application layer's answer for a command. Idempotent: the same answer again
    /// changes nothing; a different answer for an acknowledged command is a conflict.
    public func acknowledge(
        commandId: String, outcome: CommandAckOutcome, detail: String?, actor: String, now: Date
    ) async throws -> CommandView {
        try await StoreError.mapping {
            try await database.pool.write { db in
                var session = self.session(db, now: now)
                try session.acknowledge(commandId: commandId, outcome: outcome, detail: detail, actor: actor)
                try session.decideAndSave()
                guard let row = try Row.fetchOne(db, sql: "SELECT * FROM commands WHERE id = ?", arguments: [commandId])
                else { throw StoreError.notFound("command \(commandId)") }
                return Self.commandView(row)
            }
        }
    }

    // MARK: Queries

    public func deployments(now: Date) async throws -> [DeploymentView] {
        try await StoreError.mapping {
            try await database.pool.read { db in
                try self.topology.deployments.map { try self.deploymentView($0, db: db, now: now) }
            }
        }
    }

    public func deployment(id: String, now: Date) async throws -> DeploymentView? {
        guard let deployment = topology.deployment(id) else { return nil }
        return try await StoreError.mapping {
            try await database.pool.read { db in try self.deploymentView(deployment, db: db, now: now) }
        }
    }

    public func failureWindows(hub: String?, open: Bool?, page: PageRequest) async throws -> Page<FailureWindowView> {
        try await StoreError.mapping {
            try await database.pool.read { db in
                var filter = SQLFilter()
                filter.add("hub_id = ?", hub)
                if let open { filter.add(open ? "closed_at IS NULL" : "closed_at IS NOT NULL") }
                return try page.fetch(db, from: "failure_windows", filter: filter, ascending: false, Self.windowView)
            }
        }
    }

    public func failoverEvents(deployment: String?, page: PageRequest) async throws -> Page<FailoverEventView> {
        try await StoreError.mapping {
            try await database.pool.read { db in
                var filter = SQLFilter()
                filter.add("deployment_id = ?", deployment)
                return try page.fetch(db, from: "failover_events", filter: filter, ascending: false) {
                    try Self.eventView($0, db: db)
                }
            }
        }
    }

    public func failoverEvent(id: String) async throws -> FailoverEventView? {
        try await StoreError.mapping {
            try await database.pool.read { db in
                try Row.fetchOne(db, sql: "SELECT * FROM failover_events WHERE id = ?", arguments: [id]).map {
                    try Self.eventView($0, db: db)
                }
            }
        }
    }

    /// Commands oldest first, the order the application layer must apply them in.
    public func commands(status: String?, deployment: String?, page: PageRequest) async throws -> Page<CommandView> {
        try await StoreError.mapping {
            try await database.pool.read { db in
                var filter = SQLFilter()
                filter.add("status = ?", status)
                filter.add("deployment_id = ?", deployment)
                return try page.fetch(db, from: "commands", filter: filter, ascending: true, Self.commandView)
            }
        }
    }

    // MARK: Views

    func deploymentView(_ deployment: DeploymentDefinition, db: Database, now: Date) throws -> DeploymentView {
        let state = try ControlSession.loadDeploymentState(deployment, db: db)
        let policy = deployment.policy
        let hubs = try deployment.hubs.map { hub -> HubView in
            let health = try ControlSession.loadHubState(
                HubReference(deploymentId: deployment.id, hubId: hub.id), db: db, cache: hubCache)
            var sources: [SourceView] = health.probes.map { source, probe in
                SourceView(
                    source: source, kind: "probe", state: probe.state(now: now, policy: policy),
                    lastObservedAt: probe.lastObservedAt.map(Timestamp.format),
                    consecutiveFailures: probe.streak.consecutiveFailures,
                    consecutiveSuccesses: probe.streak.consecutiveSuccesses, rule: nil, label: nil, evidence: nil)
            }
            sources += health.azure.map { source, signal in
                SourceView(
                    source: source, kind: "azure", state: signal.state, lastObservedAt: Timestamp.format(signal.since),
                    consecutiveFailures: nil, consecutiveSuccesses: nil, rule: signal.rule, label: signal.label,
                    evidence: signal.evidence)
            }
            return HubView(
                id: hub.id, region: hub.region, regionName: hub.regionName, role: hub.role, endpoint: hub.endpoint,
                serving: state.serving.contains(hub.id),
                health: HealthTracker.health(of: health, policy: policy, now: now),
                healthSince: health.healthSince.map(Timestamp.format),
                sources: sources.sorted { $0.source < $1.source },
                openWindow: health.openWindow.map { Self.windowView($0, updatedAt: now) })
        }
        let automationState: String
        var reason: String?
        if state.paused {
            automationState = "paused"
            reason = state.pausedReason
        } else if let hold = state.hold {
            automationState = "held"
            reason = hold
        } else if policy.dryRun {
            automationState = "dry-run"
        } else {
            automationState = "active"
        }
        let last = try Row.fetchOne(
            db,
            sql: "SELECT * FROM failover_events WHERE deployment_id = ? ORDER BY seq DESC LIMIT 1",
            arguments: [deployment.id])
        return DeploymentView(
            id: deployment.id, pattern: deployment.pattern, serving: state.serving,
            automation: AutomationView(
                state: automationState, reason: reason, paused: state.paused, dryRun: policy.dryRun,
                failbackReady: state.failbackReady, openFailoverEventId: state.openEventId,
                automaticMovesLastHour: state.automaticMoves.filter { now.timeIntervalSince($0) < 3600 }.count,
                lastMoveAt: state.lastMoveAt.map(Timestamp.format)),
            hubs: hubs, lastFailover: try last.map { try Self.eventView($0, db: db) })
    }

    static func windowView(_ row: Row) -> FailureWindowView {
        FailureWindowView(
            id: row["id"], deploymentId: row["deployment_id"], hubId: row["hub_id"],
            open: (row["closed_at"] as String?) == nil, openedAt: row["opened_at"],
            firstFailureAt: row["first_failure_at"], lastFailureAt: row["last_failure_at"],
            failureCount: row["failure_count"], sources: decodeStrings(row["sources"]),
            evidence: decodeStrings(row["evidence"]), declaredDownAt: row["declared_down_at"],
            closedAt: row["closed_at"])
    }

    static func windowView(_ window: FailureWindow, updatedAt: Date) -> FailureWindowView {
        FailureWindowView(
            id: window.id, deploymentId: window.deploymentId, hubId: window.hubId, open: window.closedAt == nil,
            openedAt: Timestamp.format(window.openedAt), firstFailureAt: Timestamp.format(window.firstFailureAt),
            lastFailureAt: Timestamp.format(window.lastFailureAt), failureCount: window.failureCount,
            sources: window.sources, evidence: window.evidence,
            declaredDownAt: window.declaredDownAt.map(Timestamp.format), closedAt: window.closedAt.map(Timestamp.format)
        )
    }

    static func commandView(_ row: Row) -> CommandView {
        let parameters = JSONValue.parse(row["parameters"])?.objectValue?.compactMapValues(\.stringValue) ?? [:]
        return CommandView(
            id: row["id"], deploymentId: row["deployment_id"], failoverEventId: row["failover_event_id"],
            position: row["position"], kind: row["kind"], hub: row["hub"], fromHub: row["from_hub"],
            toHub: row["to_hub"], parameters: parameters, status: row["status"], createdAt: row["created_at"],
            updatedAt: row["updated_at"], ackOutcome: row["ack_outcome"], ackDetail: row["ack_detail"],
            ackActor: row["ack_actor"], ackedAt: row["acked_at"], deliveryAttempts: row["delivery_attempts"],
            lastError: row["last_error"])
    }

    static func eventView(_ row: Row, db: Database) throws -> FailoverEventView {
        let id: String = row["id"]
        let commands = try Row.fetchAll(
            db, sql: "SELECT * FROM commands WHERE failover_event_id = ? ORDER BY position", arguments: [id]
        ).map(commandView)
        return FailoverEventView(
            id: id, deploymentId: row["deployment_id"], kind: row["kind"], trigger: row["trigger"],
            fromHub: row["from_hub"], toHub: row["to_hub"], reason: row["reason"], rule: row["rule"],
            evidence: decodeStrings(row["evidence"]), actor: row["actor"], dryRun: row["dry_run"],
            status: row["status"], createdAt: row["created_at"], settledAt: row["settled_at"], commands: commands)
    }

    static func decodeStrings(_ text: String?) -> [String] {
        (text.flatMap(JSONValue.parse)?.arrayValue ?? []).compactMap(\.stringValue)
    }
}

/// IDs for a read-only rehearsal of a tick: never stored.
struct DryRunIDs: IDSource {
    func next() -> String { "rehearsal" }
}

/// Counts read from the database when `/metrics` is scraped: the database is the truth, so the
/// figures survive restarts and agree with the API.
public struct MetricsSnapshot: Sendable {
    public var hubHealth: [(deploymentId: String, hubId: String, health: HubHealth)] = []
    public var openWindows: [(deploymentId: String, hubId: String, count: Int)] = []
    public var failovers: [(deploymentId: String, trigger: String, kind: String, count: Int)] = []
    public var commands: [(status: String, count: Int)] = []
    public var resubmissions: [(status: String, count: Int)] = []
}

extension ControlPlane {
    public func metricsSnapshot(now: Date) async throws -> MetricsSnapshot {
        try await StoreError.mapping {
            try await database.pool.read { db in
                var snapshot = MetricsSnapshot()
                for deployment in self.topology.deployments {
                    for hub in deployment.hubs {
                        let state = try ControlSession.loadHubState(
                            HubReference(deploymentId: deployment.id, hubId: hub.id), db: db, cache: self.hubCache)
                        snapshot.hubHealth.append(
                            (
                                deployment.id, hub.id,
                                HealthTracker.health(of: state, policy: deployment.policy, now: now)
                            ))
                    }
                }
                snapshot.openWindows = try Row.fetchAll(
                    db,
                    sql:
                        "SELECT deployment_id, hub_id, count(*) AS n FROM failure_windows WHERE closed_at IS NULL GROUP BY 1, 2"
                ).map { ($0["deployment_id"], $0["hub_id"], $0["n"]) }
                snapshot.failovers = try Row.fetchAll(
                    db, sql: "SELECT deployment_id, trigger, kind, count(*) AS n FROM failover_events GROUP BY 1, 2, 3"
                ).map { ($0["deployment_id"], $0["trigger"], $0["kind"], $0["n"]) }
                snapshot.commands = try Row.fetchAll(db, sql: "SELECT status, count(*) AS n FROM commands GROUP BY 1")
                    .map { ($0["status"], $0["n"]) }
                snapshot.resubmissions = try Row.fetchAll(
                    db, sql: "SELECT status, count(*) AS n FROM resubmissions GROUP BY 1"
                ).map { ($0["status"], $0["n"]) }
                return snapshot
            }
        }
    }
}

// MARK: - Push delivery

extension ControlPlane {
    /// Commands ready to push: pending, due, and first in their failover event among those not yet
    /// delivered, so that one event's commands arrive in order.
    public func deliverableCommands(now: Date, limit: Int) async throws -> [CommandView] {
        let pushDeployments = topology.deployments.filter { $0.commandWebhook != nil }.map(\.id)
        guard !pushDeployments.isEmpty else { return [] }
        return try await StoreError.mapping {
            try await database.pool.read { db in
                let placeholders = Array(repeating: "?", count: pushDeployments.count).joined(separator: ", ")
                var arguments = StatementArguments(pushDeployments)
                arguments += [Timestamp.format(now), limit]
                return try Row.fetchAll(
                    db,
                    sql: """
                        SELECT c.* FROM commands c
                        WHERE c.status = 'pending' AND c.deployment_id IN (\(placeholders)) AND c.next_attempt_at <= ?
                          AND NOT EXISTS (
                              SELECT 1 FROM commands earlier
                              WHERE earlier.failover_event_id = c.failover_event_id AND earlier.position < c.position
                                AND earlier.status NOT IN ('delivered', 'succeeded'))
                        ORDER BY c.seq LIMIT ?
                        """,
                    arguments: arguments
                ).map(Self.commandView)
            }
        }
    }

    /// The receiver answered 2xx. Acknowledgement may already have come through the API; then
    /// only the attempt is counted.
    public func recordDelivery(commandId: String, now: Date) async throws {
        try await StoreError.mapping {
            try await database.pool.write { db in
                let at = Timestamp.format(now)
                try db.execute(
                    sql: """
                        UPDATE commands SET delivery_attempts = delivery_attempts + 1, last_error = NULL,
                            status = CASE status WHEN 'pending' THEN 'delivered' ELSE status END, updated_at = ?
                        WHERE id = ?
                        """,
                    arguments: [at, commandId])
                guard let row = try Row.fetchOne(db, sql: "SELECT * FROM commands WHERE id = ?", arguments: [commandId])
                else {
                    return
                }
                try self.database.chain.append(
                    EventDraft(
                        type: "command.delivered", at: now, deploymentId: row["deployment_id"], hub: row["hub"],
                        actor: "dispatcher",
                        data: .object([
                            "commandId": .string(commandId),
                            "attempts": .number(Double(row["delivery_attempts"] as Int)),
                        ])), in: db)
            }
        }
    }

    /// A push attempt failed: schedule the next one, or give up and fail the command (and its event).
    public func recordDeliveryFailure(
        commandId: String, error: String, nextAttemptAt: Date?, now: Date
    ) async throws {
        try await StoreError.mapping {
            try await database.pool.write { db in
                let at = Timestamp.format(now)
                try db.execute(
                    sql: """
                        UPDATE commands SET delivery_attempts = delivery_attempts + 1, last_error = ?,
                            next_attempt_at = ?, updated_at = ? WHERE id = ? AND status = 'pending'
                        """,
                    arguments: [error, nextAttemptAt.map(Timestamp.format), at, commandId])
                guard nextAttemptAt == nil else { return }
                var session = self.session(db, now: now)
                try session.acknowledge(
                    commandId: commandId, outcome: .failed, detail: "push delivery failed: \(error)",
                    actor: "dispatcher")
                try session.decideAndSave()
            }
        }
    }
}

/// The control session the writes of one group-commit batch share: signals are applied as each
/// write runs; the engine decides and the state is saved once, before the batch commits.
final class SharedControlSession: BatchParticipant {
    var session: ControlSession
    /// The deliveries and reports whose signals the session holds.
    var inputs: [String] = []
    private var beforeWrite: (session: ControlSession, inputs: Int)?

    init(_ session: ControlSession) {
        self.session = session
    }

    func beginWrite() { beforeWrite = (session, inputs.count) }

    func rollbackWrite() {
        guard let beforeWrite else { return }
        session = beforeWrite.session
        inputs.removeLast(inputs.count - beforeWrite.inputs)
    }

    func flush(_ db: Database, isolated: Bool) throws {
        do {
            try db.withinSavepoint { try session.decideAndSave() }
        } catch {
            let classified = StoreError.classify(error)
            if case StoreError.unavailable = classified { throw classified }
            // Alone in its batch, the write whose signal cannot be processed is still kept (raw
            // first), with the failure in the history; in a shared batch the writer retries alone.
            guard isolated else { throw error }
            try session.chain.append(
                EventDraft(
                    type: "signal.processing_failed", at: session.now, actor: "standby",
                    data: .object(["inputs": .strings(inputs), "error": .string(String(describing: error))])), in: db)
        }
    }
}
