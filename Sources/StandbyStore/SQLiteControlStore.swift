import Foundation
import GRDB
import StandbyApp
import StandbyCore
import StandbyPrimitives

/// The control plane's storage on SQLite: units of work are write transactions of the one
/// `DatabasePool` (its single writer serialises them, which is how decisions for a deployment are
/// serialised), and shared writes go through the group-commit writer.
public final class SQLiteControlStore: ControlStore {
    public let database: StandbyDatabase

    public init(database: StandbyDatabase) {
        self.database = database
    }

    public func write<T: Sendable>(_ work: @escaping @Sendable (any ControlTransaction) throws -> T) async throws -> T {
        try await StoreError.mapping {
            try await database.pool.write { [database] db in try work(database.transaction(db)) }
        }
    }

    /// `readAhead` is not needed: the embedded file answers each lookup without a round trip.
    public func sharedWrite<T: Sendable>(
        lane: WriteLane, weight: Int, readAhead: ReadAhead,
        _ work: @escaping @Sendable (SharedUnitsOfWork) throws -> T
    ) async throws -> T {
        try await database.groupCommit.write(lane: lane, weight: weight) { batch in try work(batch.units) }
    }

    public func read<T: Sendable>(_ work: @escaping @Sendable (any ControlReads) throws -> T) async throws -> T {
        try await StoreError.mapping {
            try await database.pool.read { [database] db in try work(database.transaction(db)) }
        }
    }

    public func checkReady(now: Date) async throws {
        try await database.checkReady(now: now)
    }

    /// An embedded database has one instance, its own process, which always leads: nothing else
    /// can open the file for writing while it runs.
    public func cluster(seenFrom instance: InstanceIdentity, now: Date) async throws -> ClusterView {
        ClusterView(
            backend: .sqlite,
            instances: [
                ClusterView.Instance(
                    id: instance.id, region: instance.region, url: instance.url, version: instance.version,
                    startedAt: Timestamp.format(instance.startedAt), lastSeenAt: Timestamp.format(now), leader: true)
            ],
            leader: ClusterView.Leader(instance: instance.id, epoch: 1, expiresAt: nil),
            database: ClusterView.Database(host: database.settings.path, role: "primary"))
    }

    /// The one embedded instance holds a lease that never lapses.
    public func heartbeat(_ instance: InstanceIdentity, leaseTTL: TimeInterval, now: Date) async throws -> LeaderLease {
        LeaderLease(holder: instance.id, epoch: 1, expiresAt: nil)
    }
}

extension StandbyDatabase {
    func transaction(_ db: Database) -> SQLiteTransaction {
        SQLiteTransaction(db: db, chain: chain, hubStates: hubStates)
    }
}

/// A unit of work on one SQLite connection, inside its transaction (or a read snapshot). Every
/// method reports storage trouble as `StoreError.unavailable`, as the port's contract says.
struct SQLiteTransaction: ControlTransaction {
    let db: Database
    let chain: EventChain
    let hubStates: HubStateCache
    let chainHead = ChainHead()

    private func sqlite<T>(_ body: () throws -> T) throws -> T {
        try StoreError.mapping(body)
    }

    // MARK: Reads

    func hubState(_ hub: HubReference) throws -> HubHealthState {
        try sqlite { try HubHealthTable.state(hub, in: db, cache: hubStates) }
    }

    func deploymentState(_ deploymentId: String) throws -> DeploymentState? {
        try sqlite { try DeploymentStateTable.state(deploymentId, in: db) }
    }

    func command(id: String) throws -> CommandView? {
        try sqlite { try CommandsTable.command(id: id, in: db) }
    }

    func commandStatuses(failoverEventId: String) throws -> [CommandStatus] {
        try sqlite { try CommandsTable.statuses(ofFailoverEvent: failoverEventId, in: db) }
    }

    func commands(status: CommandStatus?, deploymentId: String?, page: PageRequest) throws -> Page<CommandView> {
        try sqlite { try CommandsTable.page(status: status, deploymentId: deploymentId, page: page, in: db) }
    }

    func deliverableCommands(deploymentIds: [String], now: Date, limit: Int) throws -> [CommandView] {
        try sqlite { try CommandsTable.deliverable(deploymentIds: deploymentIds, now: now, limit: limit, in: db) }
    }

    func failoverEvent(id: String) throws -> FailoverEventView? {
        try sqlite { try FailoverEventsTable.event(id: id, in: db) }
    }

    func latestFailoverEvent(deploymentId: String) throws -> FailoverEventView? {
        try sqlite { try FailoverEventsTable.latest(deploymentId: deploymentId, in: db) }
    }

    func failoverEvents(deploymentId: String?, page: PageRequest) throws -> Page<FailoverEventView> {
        try sqlite { try FailoverEventsTable.page(deploymentId: deploymentId, page: page, in: db) }
    }

    func failureWindows(hubId: String?, open: Bool?, page: PageRequest) throws -> Page<FailureWindowView> {
        try sqlite { try FailureWindowsTable.page(hubId: hubId, open: open, page: page, in: db) }
    }

    func tallies() throws -> StoredTallies {
        try sqlite {
            var tallies = StoredTallies()
            tallies.openWindows = try FailureWindowsTable.openTallies(in: db)
            tallies.failovers = try FailoverEventsTable.tallies(in: db)
            tallies.commandsByStatus = try CommandsTable.countsByStatus(in: db)
            tallies.resubmissionsByStatus = try ResubmissionsTable.countsByStatus(in: db)
            return tallies
        }
    }

    func job(id: String) throws -> StoredJob? {
        try sqlite { try TrainingJobsTable.job(id: id, in: db) }
    }

    func job(externalId: String) throws -> StoredJob? {
        try sqlite { try TrainingJobsTable.job(externalId: externalId, in: db) }
    }

    func jobView(id: String) throws -> JobView? {
        try sqlite { try TrainingJobsTable.job(id: id, in: db)?.view }
    }

    func jobs(status: JobStatus?, hubId: String?, page: PageRequest) throws -> Page<JobView> {
        try sqlite { try TrainingJobsTable.page(status: status, hubId: hubId, page: page, in: db) }
    }

    func resubmission(id: String) throws -> StoredResubmission? {
        try sqlite { try ResubmissionsTable.resubmission(id: id, in: db) }
    }

    func resubmissionView(id: String, withSpec: Bool) throws -> ResubmissionView? {
        try sqlite { try ResubmissionsTable.view(id: id, withSpec: withSpec, in: db) }
    }

    func resubmissions(status: ResubmissionStatus?, page: PageRequest) throws -> Page<ResubmissionView> {
        try sqlite { try ResubmissionsTable.page(status: status, page: page, in: db) }
    }

    func expiredLeaseCount(now: Date) throws -> Int {
        try sqlite { try ResubmissionsTable.expiredLeaseCount(now: now, in: db) }
    }

    func overdueCommands(createdBefore: Date, limit: Int) throws -> [CommandView] {
        try sqlite { try CommandsTable.overdue(createdBefore: createdBefore, limit: limit, in: db) }
    }

    func maintenanceWindows(deploymentId: String?, active: Bool?, now: Date, page: PageRequest) throws
        -> Page<MaintenanceWindow>
    {
        try sqlite {
            try MaintenanceWindowsTable.page(deploymentId: deploymentId, active: active, now: now, page: page, in: db)
        }
    }

    func maintenanceWindow(id: String) throws -> MaintenanceWindow? {
        try sqlite { try MaintenanceWindowsTable.window(id: id, in: db) }
    }

    func activeMaintenanceWindows(deploymentId: String, at: Date) throws -> [MaintenanceWindow] {
        try sqlite { try MaintenanceWindowsTable.active(deploymentId: deploymentId, at: at, in: db) }
    }

    func notifications(status: NotificationStatus?, deploymentId: String?, page: PageRequest) throws
        -> Page<NotificationView>
    {
        try sqlite { try NotificationsTable.page(status: status, deploymentId: deploymentId, page: page, in: db) }
    }

    func deliverableNotifications(now: Date, limit: Int) throws -> [NotificationView] {
        try sqlite { try NotificationsTable.deliverable(now: now, limit: limit, in: db) }
    }

    func drill(id: String) throws -> DrillView? {
        try sqlite { try DrillsTable.drill(id: id, in: db) }
    }

    func drills(deploymentId: String?, page: PageRequest) throws -> Page<DrillView> {
        try sqlite { try DrillsTable.page(deploymentId: deploymentId, page: page, in: db) }
    }

    // MARK: Writes

    func saveDrill(_ drill: DrillView) throws {
        try sqlite { try DrillsTable.save(drill, in: db) }
    }

    func storeReadinessReport(_ report: ReadinessReportInput, receivedAt: Date, actor: String) throws -> String {
        try sqlite { try ReadinessReportsTable.store(report, receivedAt: receivedAt, actor: actor, in: db) }
    }

    func expireCommand(id: String, at: Date) throws {
        try sqlite { try CommandsTable.expire(commandId: id, at: at, in: db) }
    }

    func insertMaintenanceWindow(_ window: MaintenanceWindow, fingerprint: String) throws
        -> (window: MaintenanceWindow, created: Bool)
    {
        try sqlite { try MaintenanceWindowsTable.insert(window, fingerprint: fingerprint, in: db) }
    }

    func endMaintenanceWindow(id: String, at: Date) throws {
        try sqlite { try MaintenanceWindowsTable.end(id: id, at: at, in: db) }
    }

    func insertNotification(_ notification: NotificationView) throws {
        try sqlite { try NotificationsTable.insert(notification, in: db) }
    }

    func recordNotificationDelivered(id: String, at: Date) throws {
        try sqlite { try NotificationsTable.recordDelivered(id: id, at: at, in: db) }
    }

    func recordNotificationFailure(id: String, error: String, nextAttemptAt: Date?, at: Date) throws {
        try sqlite {
            try NotificationsTable.recordFailure(id: id, error: error, nextAttemptAt: nextAttemptAt, at: at, in: db)
        }
    }

    func storeReport(_ report: HealthReportInput, receivedAt: Date, actor: String) throws -> String {
        try sqlite { try HealthReportsTable.store(report, receivedAt: receivedAt, actor: actor, in: db) }
    }

    func storeDelivery(_ delivery: IncomingDelivery, content: DeliveryContent, ids: any IDSource) throws
        -> IngestResult
    {
        try sqlite { try record(delivery, content: content, ids: ids) }
    }

    func saveHubState(_ state: HubHealthState, for hub: HubReference, at: Date) throws {
        try sqlite { try HubHealthTable.save(state, for: hub, at: at, in: db, cache: hubStates) }
    }

    func saveDeploymentState(_ state: DeploymentState, deploymentId: String, at: Date) throws {
        try sqlite { try DeploymentStateTable.save(state, deploymentId: deploymentId, at: at, in: db) }
    }

    func saveFailureWindow(_ window: FailureWindow, at: Date) throws {
        try sqlite { try FailureWindowsTable.save(window, at: at, in: db) }
    }

    func insertFailoverEvent(_ plan: FailoverPlan, status: FailoverEventStatus, at: Date) throws {
        try sqlite {
            try FailoverEventsTable.insert(plan, status: status, at: at, in: db)
            for (position, command) in plan.commands.enumerated() {
                try CommandsTable.insert(command, of: plan, position: position, at: at, in: db)
            }
        }
    }

    func settleFailoverEvent(id: String, status: FailoverEventStatus, at: Date) throws {
        try sqlite { try FailoverEventsTable.settle(id: id, status: status, at: at, in: db) }
    }

    func supersedeFailoverEvent(id: String, at: Date) throws {
        try sqlite {
            try FailoverEventsTable.settle(id: id, status: .superseded, at: at, in: db)
            try CommandsTable.supersede(ofFailoverEvent: id, at: at, in: db)
        }
    }

    func recordAcknowledgement(
        commandId: String, outcome: CommandAckOutcome, detail: String?, actor: String, at: Date
    ) throws {
        try sqlite {
            try CommandsTable.recordAcknowledgement(
                commandId: commandId, outcome: outcome, detail: detail, actor: actor, at: at, in: db)
        }
    }

    func countDuplicateAcknowledgement(commandId: String) throws {
        try sqlite { try CommandsTable.countDuplicateAcknowledgement(commandId: commandId, in: db) }
    }

    func recordPushDelivered(commandId: String, at: Date) throws {
        try sqlite { try CommandsTable.recordPushDelivered(commandId: commandId, at: at, in: db) }
    }

    func recordPushFailure(commandId: String, error: String, nextAttemptAt: Date?, at: Date) throws {
        try sqlite {
            try CommandsTable.recordPushFailure(
                commandId: commandId, error: error, nextAttemptAt: nextAttemptAt, at: at, in: db)
        }
    }

    func insertJob(_ job: StoredJob) throws {
        try sqlite { try TrainingJobsTable.insert(job, in: db) }
    }

    func saveJob(_ job: StoredJob) throws {
        try sqlite { try TrainingJobsTable.save(job, in: db) }
    }

    func runningJobs(hubId: String) throws -> [StoredJob] {
        try sqlite { try TrainingJobsTable.running(onHub: hubId, in: db) }
    }

    func insertResubmission(_ resubmission: StoredResubmission) throws -> Bool {
        try sqlite { try ResubmissionsTable.insert(resubmission, in: db) }
    }

    func saveResubmission(_ resubmission: StoredResubmission) throws {
        try sqlite { try ResubmissionsTable.save(resubmission, in: db) }
    }

    func availableResubmissions(now: Date, limit: Int) throws -> [StoredResubmission] {
        try sqlite { try ResubmissionsTable.available(now: now, limit: limit, in: db) }
    }

    func expiredLeases(now: Date) throws -> [StoredResubmission] {
        try sqlite { try ResubmissionsTable.expiredLeases(now: now, in: db) }
    }

    func append(_ event: EventDraft) throws {
        try sqlite { _ = try chain.append(event, in: db, head: chainHead) }
    }

    /// Nothing else can write the file while this process runs: its lease holds for ever.
    func requireLease(holder: String, epoch: Int) throws {}

    func inSavepoint<T>(_ work: () throws -> T) throws -> T {
        do {
            return try db.withinSavepoint(work)
        } catch {
            chainHead.forget()
            throw error
        }
    }
}
