import Foundation
import StandbyCore
import StandbyPrimitives

/// The control plane's use cases: the imperative shell around the health tracker and the decision
/// engine. Inside one unit of work it loads their state, feeds them signals and time, and persists
/// what they return (windows, failover events, commands, interrupted jobs, history). A signal and
/// the decisions it caused commit together or not at all.
public final class ControlPlane: Sendable {
    public let store: any ControlStore
    public let topology: Topology
    let ids: any IDSource
    let resubmissionAttempts: Int
    public let incident: IncidentSettings

    public init(
        store: any ControlStore, topology: Topology, ids: any IDSource = TimeOrderedIDSource(),
        resubmissionAttempts: Int = QueueSettings().maxAttempts, incident: IncidentSettings = IncidentSettings()
    ) {
        self.store = store
        self.topology = topology
        self.ids = ids
        self.resubmissionAttempts = resubmissionAttempts
        self.incident = incident
    }

    func session(_ reads: any ControlReads, now: Date, ids: (any IDSource)? = nil) -> ControlSession {
        var session = ControlSession(reads: reads, topology: topology, ids: ids ?? self.ids, now: now)
        session.maxAttempts = resubmissionAttempts
        session.incident = incident
        return session
    }

    // MARK: Signals

    /// Reports per unit of work of a large batch: each part is a bulk write, so that a reporter
    /// posting 1000 reports at once never holds webhook deliveries behind it.
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
        try await store.sharedWrite(lane: lane, weight: reports.count) { units in
            try self.applySignals(in: units, now: now, inputs: reports.map { "report:\($0.id)" }) { session in
                try reports.map { try session.record($0, actor: actor, in: units.transaction) }
            }
        }
    }

    /// Ingests one webhook delivery, raw first: the delivery and its alert are stored, then, once
    /// every unit of the shared transaction stored its own, the alert's signals are applied to the
    /// hubs it concerns (the engine decides once for the shared transaction, before it commits).
    /// Processing that fails for any reason but storage trouble leaves the raw delivery stored
    /// and the failure in the history; storage trouble fails the whole write, so that Azure retries.
    public func ingest(_ delivery: IncomingDelivery, content: DeliveryContent) async throws -> IngestResult {
        let now = delivery.receivedAt
        let readAhead = ReadAhead(alertKeys: [content.alertKey(sha256: delivery.sha256)])
        return try await store.sharedWrite(lane: .interactive, weight: 1, readAhead: readAhead) {
            [topology, ids] units in
            let result = try units.transaction.storeDelivery(delivery, content: content, ids: ids)
            guard let alert = result.alert, !result.hubs.isEmpty else { return result }
            units.atFinish(deciding: result.hubs.map(\.deploymentId), at: now) { units in
                do {
                    try units.transaction.inSavepoint {
                        try self.applySignals(in: units, now: now, inputs: ["delivery:\(result.deliveryId)"]) {
                            session in
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
                    if case StoreError.unavailable = error { throw error }
                    try units.transaction.append(
                        EventDraft(
                            type: "delivery.processing_failed", at: delivery.receivedAt, actor: "standby",
                            data: .object([
                                "deliveryId": .string(delivery.id), "alertId": .string(result.alertId),
                                "error": .string(String(describing: error)),
                            ])))
                }
            }
            return result
        }
    }

    /// Runs `body` on the session the units of `units` share, for the signals of `inputs` (named in
    /// the history if processing them fails); if `body` throws, the session is left as it was.
    private func applySignals<T>(
        in units: SharedUnitsOfWork, now: Date, inputs: [String], _ body: (inout ControlSession) throws -> T
    ) throws -> T {
        let shared = units.session ?? SharedControlSession(session(units.transaction, now: now))
        units.session = shared
        let before = shared.snapshot()
        // Each unit's signals at its own time; the transaction decides at the latest of them.
        shared.session.now = now
        do {
            let result = try body(&shared.session)
            shared.session.now = max(before.session.now, now)
            shared.inputs += inputs
            return result
        } catch {
            shared.restore(before)
            throw error
        }
    }

    /// Time passing: staleness, failback stability, cooldown expiry. Writes only when something
    /// changed, which a read-only rehearsal finds out first.
    @discardableResult
    public func tick(now: Date) async throws -> Bool {
        let changed = try await store.read { reads in
            var session = self.session(reads, now: now, ids: RehearsalIDs())
            try session.refreshAll()
            try session.decideAll()
            return session.hasChanges
        }
        guard changed else { return false }
        try await store.write { [topology] transaction in
            try transaction.prepareToDecide(deploymentIds: topology.deployments.map(\.id).sorted(), from: now)
            var session = self.session(transaction, now: now)
            try session.refreshAll()
            try session.decideAll()
            try session.save(in: transaction)
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
        let planId: String? = try await store.write { transaction in
            var session = self.session(transaction, now: now)
            try session.refresh(deployment)
            let planId = try session.operatorAction(request, on: deployment)
            try session.decideAndSave(in: transaction)
            return planId
        }
        if let planId, let event = try await failoverEvent(id: planId) { return .moved(event) }
        guard let view = try await self.deployment(id: deploymentId, now: now) else {
            throw StoreError.notFound("deployment \(deploymentId)")
        }
        return .updated(view)
    }

    /// What `request` would do now, decided by the engine on a snapshot and never saved: the
    /// move it would make (its commands and the jobs it would interrupt), or why it would be refused.
    public func preview(deploymentId: String, request: OperatorRequest, now: Date) async throws -> OperatorPreview {
        guard let deployment = topology.deployment(deploymentId) else {
            throw StoreError.notFound("deployment \(deploymentId)")
        }
        return try await store.read { reads in
            var session = self.session(reads, now: now, ids: RehearsalIDs())
            try session.refresh(deployment)
            do {
                _ = try session.operatorAction(request, on: deployment)
            } catch StoreError.conflict(let reason) {
                return .refused(reason)
            }
            guard let plan = session.decidedPlans.first(where: { !$0.commands.isEmpty }) ?? session.decidedPlans.first
            else { return .noMove }
            var interrupted = 0
            if !plan.dryRun {
                for hub in plan.interruptedHubs {
                    interrupted += try reads.jobs(status: .running, hubId: hub, page: PageRequest(limit: 1000)).items
                        .count
                }
            }
            return .move(plan, interruptedJobs: interrupted)
        }
    }

    /// Records the application layer's answer for a command. Idempotent: the same answer again
    /// changes nothing; a different answer for an acknowledged command is a conflict.
    public func acknowledge(
        commandId: String, outcome: CommandAckOutcome, detail: String?, actor: String, now: Date
    ) async throws -> CommandView {
        try await store.write { transaction in
            var session = self.session(transaction, now: now)
            try session.acknowledge(
                commandId: commandId, outcome: outcome, detail: detail, actor: actor, in: transaction)
            try session.decideAndSave(in: transaction)
            guard let command = try transaction.command(id: commandId) else {
                throw StoreError.notFound("command \(commandId)")
            }
            return command
        }
    }

    // MARK: Queries

    public func deployments(now: Date) async throws -> [DeploymentView] {
        try await store.read { reads in
            try self.topology.deployments.map { try DeploymentView.build($0, from: reads, now: now) }
        }
    }

    public func deployment(id: String, now: Date) async throws -> DeploymentView? {
        guard let deployment = topology.deployment(id) else { return nil }
        return try await store.read { reads in try DeploymentView.build(deployment, from: reads, now: now) }
    }

    public func failureWindows(hub: String?, open: Bool?, page: PageRequest) async throws -> Page<FailureWindowView> {
        try await store.read { reads in try reads.failureWindows(hubId: hub, open: open, page: page) }
    }

    public func failoverEvents(deployment: String?, page: PageRequest) async throws -> Page<FailoverEventView> {
        try await store.read { reads in try reads.failoverEvents(deploymentId: deployment, page: page) }
    }

    public func failoverEvent(id: String) async throws -> FailoverEventView? {
        try await store.read { reads in try reads.failoverEvent(id: id) }
    }

    /// Commands oldest first, the order the application layer must apply them in.
    public func commands(status: CommandStatus?, deployment: String?, page: PageRequest) async throws
        -> Page<CommandView>
    {
        try await store.read { reads in try reads.commands(status: status, deploymentId: deployment, page: page) }
    }

    public func metricsSnapshot(now: Date) async throws -> MetricsSnapshot {
        try await store.read { reads in
            var snapshot = MetricsSnapshot()
            for deployment in self.topology.deployments {
                for hub in deployment.hubs {
                    let state = try reads.hubState(HubReference(deploymentId: deployment.id, hubId: hub.id))
                    snapshot.hubHealth.append(
                        (deployment.id, hub.id, HealthTracker.health(of: state, policy: deployment.policy, now: now)))
                    for check in ReadinessView.checks(of: state, policy: deployment.policy, now: now) {
                        snapshot.readiness.append((deployment.id, hub.id, check.check, check.status))
                    }
                }
            }
            let tallies = try reads.tallies()
            snapshot.openWindows = tallies.openWindows.map { ($0.deploymentId, $0.hubId, $0.count) }
            snapshot.failovers = tallies.failovers.map { ($0.deploymentId, $0.trigger, $0.kind, $0.count) }
            snapshot.commands = tallies.commandsByStatus.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
            snapshot.resubmissions = tallies.resubmissionsByStatus.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
            return snapshot
        }
    }

    // MARK: Push delivery

    /// Commands ready to push: pending, due, and first in their failover event among those not yet
    /// delivered, so that one event's commands arrive in order.
    public func deliverableCommands(now: Date, limit: Int) async throws -> [CommandView] {
        let pushDeployments = topology.deployments.filter { $0.commandWebhook != nil }.map(\.id)
        guard !pushDeployments.isEmpty else { return [] }
        return try await store.read { reads in
            try reads.deliverableCommands(deploymentIds: pushDeployments, now: now, limit: limit)
        }
    }

    /// The receiver answered 2xx. Acknowledgement may already have come through the API; then
    /// only the attempt is counted.
    public func recordDelivery(commandId: String, now: Date) async throws {
        try await store.write { transaction in
            try transaction.recordPushDelivered(commandId: commandId, at: now)
            guard let command = try transaction.command(id: commandId) else { return }
            try transaction.append(
                EventDraft(
                    type: "command.delivered", at: now, deploymentId: command.deploymentId, hub: command.hub,
                    actor: "dispatcher",
                    data: .object([
                        "commandId": .string(commandId), "attempts": .number(Double(command.deliveryAttempts)),
                    ])))
        }
    }

    /// A push attempt failed: schedule the next one, or give up and fail the command (and its event).
    public func recordDeliveryFailure(
        commandId: String, error: String, nextAttemptAt: Date?, now: Date
    ) async throws {
        try await store.write { transaction in
            try transaction.recordPushFailure(commandId: commandId, error: error, nextAttemptAt: nextAttemptAt, at: now)
            guard nextAttemptAt == nil else { return }
            var session = self.session(transaction, now: now)
            try session.acknowledge(
                commandId: commandId, outcome: .failed, detail: "push delivery failed: \(error)",
                actor: "dispatcher", in: transaction)
            try session.decideAndSave(in: transaction)
        }
    }
}

/// What an operator action would do, before it is taken.
public enum OperatorPreview: Sendable {
    /// The engine would decide `plan` (its commands in order); `interruptedJobs` running jobs
    /// would be queued for resubmission.
    case move(FailoverPlan, interruptedJobs: Int)
    /// The action changes the deployment's automation only (pause, resume).
    case noMove
    /// The engine would refuse, and says why (cooldown, an open event, a DOWN target, ...).
    case refused(String)
}

/// IDs for a read-only rehearsal (a tick's check, a preview): never stored.
struct RehearsalIDs: IDSource {
    func next() -> String { "rehearsal" }
}

/// Figures read from the store when `/metrics` is scraped.
public struct MetricsSnapshot: Sendable {
    public var hubHealth: [(deploymentId: String, hubId: String, health: HubHealth)] = []
    public var readiness: [(deploymentId: String, hubId: String, check: String, status: ReadinessStatus)] = []
    public var openWindows: [(deploymentId: String, hubId: String, count: Int)] = []
    public var failovers: [(deploymentId: String, trigger: String, kind: String, count: Int)] = []
    public var commands: [(status: String, count: Int)] = []
    public var resubmissions: [(status: String, count: Int)] = []
}

/// The control session the units of one shared transaction use: signals are applied as each unit
/// runs; the engine decides and the state is saved once, before the transaction commits.
final class SharedControlSession {
    struct Snapshot {
        var session: ControlSession
        var inputs: Int
    }

    var session: ControlSession
    /// The deliveries and reports whose signals the session holds.
    var inputs: [String] = []

    init(_ session: ControlSession) {
        self.session = session
    }

    func snapshot() -> Snapshot { Snapshot(session: session, inputs: inputs.count) }

    func restore(_ snapshot: Snapshot) {
        session = snapshot.session
        inputs.removeLast(inputs.count - snapshot.inputs)
    }

    func finish(in transaction: any ControlTransaction, isolated: Bool) throws {
        do {
            // Shared, a failure is the whole batch's (the store then runs each unit alone), so
            // no savepoint is needed: a store need not wait for the saves' answers before the
            // commit.
            if isolated {
                try transaction.inSavepoint { try session.decideAndSave(in: transaction) }
            } else {
                try session.decideAndSave(in: transaction)
            }
        } catch {
            if case StoreError.unavailable = error { throw error }
            // Alone in its transaction, the unit whose signal cannot be processed is still kept
            // (raw first), with the failure in the history; shared, the store runs each unit alone.
            guard isolated else { throw error }
            try transaction.append(
                EventDraft(
                    type: "signal.processing_failed", at: session.now, actor: "standby",
                    data: .object(["inputs": .strings(inputs), "error": .string(String(describing: error))])))
        }
    }
}
