import Foundation
import StandbyCore
import StandbyPrimitives

// The storage ports: what the use cases need from a store, in domain values only. The SQLite
// adapter (`StandbyStore`) implements them; a second store implements the same contract and runs
// the same contract suite (`Tests/StandbyStoreTests/StoreContract*`).
//
// Contract every implementation keeps:
// - A unit of work (`write`, `sharedWrite`) is one transaction, or one savepoint of a shared
//   transaction: all it wrote commits together, or nothing of it does. The call returns only after
//   the commit is durable, so a 2xx built on its result means "on disk".
// - Units of work that write the same deployment's state are serialised: the store never runs two
//   of them at once (SQLite has a single writer; a store with concurrent writers must lock the
//   deployment, e.g. with a row or advisory lock, before `deploymentState` is read).
// - Storage trouble (the store cannot take the write now) is thrown as `StoreError.unavailable`,
//   whatever the driver's error was; every other error is the caller's and left as it is.
// - Reads see committed data only.
// - A unit of work is synchronous and runs on a thread the store owns, off the cooperative pool:
//   its methods may block on the database (SQLite's calls do; a network store waits for replies).

/// The storage of the control plane: its state, its outbox, its jobs and its history.
public protocol ControlStore: Sendable {
    /// Runs `work` as one unit of work in a transaction of its own.
    func write<T: Sendable>(_ work: @escaping @Sendable (any ControlTransaction) throws -> T) async throws -> T

    /// Runs `work` as one unit of work that the store may put in a transaction shared with other
    /// concurrent units (group commit). Each unit is a savepoint: one that throws is undone alone.
    /// The units of one transaction share its `SharedUnitsOfWork`, which the store finishes once,
    /// before the commit; if finishing fails, the store runs each unit again in a transaction of
    /// its own, so that a failure stays the failing unit's. `bulk` units (parts of large report
    /// batches) wait behind interactive ones; `weight` is how much work a unit is; `readAhead`
    /// names rows the unit will read, which a store may fetch for the whole batch at once.
    func sharedWrite<T: Sendable>(
        lane: WriteLane, weight: Int, readAhead: ReadAhead,
        _ work: @escaping @Sendable (SharedUnitsOfWork) throws -> T
    ) async throws -> T

    /// Runs `work` on a consistent snapshot of committed data.
    func read<T: Sendable>(_ work: @escaping @Sendable (any ControlReads) throws -> T) async throws -> T

    /// Ready to take writes: the schema is current and a write commits (cheap enough for probes).
    func checkReady(now: Date) async throws

    /// The instances sharing this store as `instance` sees them, and who leads.
    func cluster(seenFrom instance: InstanceIdentity, now: Date) async throws -> ClusterView

    /// Registers `instance` as alive and takes or renews the leader lease for `leaseTTL` when it is
    /// free, lapsed or already this instance's (a change of holder raises the epoch); returns the
    /// lease as it stands, whoever holds it.
    func heartbeat(_ instance: InstanceIdentity, leaseTTL: TimeInterval, now: Date) async throws -> LeaderLease
}

extension ControlStore {
    /// A shared write that names nothing to read ahead.
    public func sharedWrite<T: Sendable>(
        lane: WriteLane, weight: Int, _ work: @escaping @Sendable (SharedUnitsOfWork) throws -> T
    ) async throws -> T {
        try await sharedWrite(lane: lane, weight: weight, readAhead: .nothing, work)
    }
}

/// Rows a unit of work of a shared write will read. A store that reads over a network fetches
/// those of a whole batch in one round trip before its units run, instead of one trip per unit;
/// an embedded store reads them as they come. Only a hint: a unit reads what it reads either way.
public struct ReadAhead: Sendable, Hashable {
    /// Keys of alerts whose stored head the unit looks up (`AlertRecords.alertHead(key:)`).
    public var alertKeys: [String]

    public static let nothing = ReadAhead(alertKeys: [])

    public init(alertKeys: [String]) {
        self.alertKeys = alertKeys
    }

    /// What the units of one batch read ahead, together.
    public static func merging(_ hints: some Sequence<ReadAhead>) -> ReadAhead {
        ReadAhead(alertKeys: hints.flatMap(\.alertKeys))
    }
}

/// Which queue of a shared write a unit of work waits in.
public enum WriteLane: Sendable {
    /// Small writes whose caller waits (webhook deliveries, single reports): first in every batch.
    case interactive
    /// Parts of large writes: bounded per transaction by their weight.
    case bulk
}

/// What the control plane reads: state, outbox, windows, jobs.
public protocol ControlReads {
    /// The tracker state of `hub`; a fresh state when none is stored.
    func hubState(_ hub: HubReference) throws -> HubHealthState
    /// The stored routing state of a deployment, or nil when none was ever saved.
    func deploymentState(_ deploymentId: String) throws -> DeploymentState?

    func command(id: String) throws -> CommandView?
    func commandStatuses(failoverEventId: String) throws -> [CommandStatus]
    func commands(status: CommandStatus?, deploymentId: String?, page: PageRequest) throws -> Page<CommandView>
    /// Pending commands of `deploymentIds` due at `now`, each the first of its failover event not
    /// yet delivered (so that one event's commands leave in order), oldest first.
    func deliverableCommands(deploymentIds: [String], now: Date, limit: Int) throws -> [CommandView]

    /// A failover event with its commands in order.
    func failoverEvent(id: String) throws -> FailoverEventView?
    func latestFailoverEvent(deploymentId: String) throws -> FailoverEventView?
    func failoverEvents(deploymentId: String?, page: PageRequest) throws -> Page<FailoverEventView>

    func failureWindows(hubId: String?, open: Bool?, page: PageRequest) throws -> Page<FailureWindowView>

    /// The tallies `/metrics` shows.
    func tallies() throws -> StoredTallies

    func job(id: String) throws -> StoredJob?
    func job(externalId: String) throws -> StoredJob?
    func jobView(id: String) throws -> JobView?
    func jobs(status: JobStatus?, hubId: String?, page: PageRequest) throws -> Page<JobView>
    func resubmission(id: String) throws -> StoredResubmission?
    /// The resubmission as the API shows it, with its job's spec when `withSpec`.
    func resubmissionView(id: String, withSpec: Bool) throws -> ResubmissionView?
    func resubmissions(status: ResubmissionStatus?, page: PageRequest) throws -> Page<ResubmissionView>
    func expiredLeaseCount(now: Date) throws -> Int

    /// Commands still waiting for an answer (pending or delivered) created at or before
    /// `createdBefore`, oldest first: those past the acknowledgement deadline.
    func overdueCommands(createdBefore: Date, limit: Int) throws -> [CommandView]

    /// Maintenance windows declared through the API, newest first; `active` keeps those in effect
    /// at `now` (true) or not (false).
    func maintenanceWindows(deploymentId: String?, active: Bool?, now: Date, page: PageRequest) throws
        -> Page<MaintenanceWindow>
    func maintenanceWindow(id: String) throws -> MaintenanceWindow?
    /// The API's windows of `deploymentId` in effect at `at`.
    func activeMaintenanceWindows(deploymentId: String, at: Date) throws -> [MaintenanceWindow]

    /// The notification outbox, newest first.
    func notifications(status: NotificationStatus?, deploymentId: String?, page: PageRequest) throws
        -> Page<NotificationView>
    func drill(id: String) throws -> DrillView?
    /// Drills, newest first.
    func drills(deploymentId: String?, page: PageRequest) throws -> Page<DrillView>

    /// Pending notifications due at `now`, oldest first, each the first of its receiver and
    /// incident still pending (so that a resolve never overtakes its trigger).
    func deliverableNotifications(now: Date, limit: Int) throws -> [NotificationView]
}

extension ControlReads {
    /// A job by its Standby id or, failing that, by the id the application layer gave it.
    public func job(idOrExternalId: String) throws -> StoredJob? {
        try job(id: idOrExternalId) ?? job(externalId: idOrExternalId)
    }
}

/// What a unit of work writes. Every method runs inside the unit's transaction.
public protocol ControlTransaction: ControlReads {
    /// Stores a report unless (hub, source, observedAt) is stored already; returns the stored
    /// report's id: `report.id` when new, the first one's for a duplicate (whose count goes up).
    func storeReport(_ report: HealthReportInput, receivedAt: Date, actor: String) throws -> String
    /// Stores a readiness report unless (hub, check, observedAt) is stored already; returns the
    /// stored report's id (the first one's for a duplicate, whose count goes up).
    func storeReadinessReport(_ report: ReadinessReportInput, receivedAt: Date, actor: String) throws -> String
    /// Stores a webhook delivery as it came and the alert it carries (deduplicated by alert key
    /// and state), with their history: the raw-first step of ingest.
    func storeDelivery(_ delivery: IncomingDelivery, content: DeliveryContent, ids: any IDSource) throws
        -> IngestResult

    func saveHubState(_ state: HubHealthState, for hub: HubReference, at: Date) throws
    func saveDeploymentState(_ state: DeploymentState, deploymentId: String, at: Date) throws
    func saveFailureWindow(_ window: FailureWindow, at: Date) throws

    /// Records a decided plan as a failover event in `status`, with its commands in order.
    func insertFailoverEvent(_ plan: FailoverPlan, status: FailoverEventStatus, at: Date) throws
    /// Settles an open failover event (completed, failed, superseded); a settled one stays as it is.
    func settleFailoverEvent(id: String, status: FailoverEventStatus, at: Date) throws
    /// Supersedes an open event and its commands not yet acknowledged.
    func supersedeFailoverEvent(id: String, at: Date) throws

    func recordAcknowledgement(
        commandId: String, outcome: CommandAckOutcome, detail: String?, actor: String, at: Date
    ) throws
    func countDuplicateAcknowledgement(commandId: String) throws
    /// A push reached the receiver: counts the attempt, a pending command becomes delivered.
    func recordPushDelivered(commandId: String, at: Date) throws
    /// A push failed: counts the attempt and when to try again (`nil`: never).
    func recordPushFailure(commandId: String, error: String, nextAttemptAt: Date?, at: Date) throws

    func insertJob(_ job: StoredJob) throws
    func saveJob(_ job: StoredJob) throws
    /// Jobs running on `hubId`, oldest first (read for update: a move interrupts them).
    func runningJobs(hubId: String) throws -> [StoredJob]
    /// Queues a resubmission unless one exists for (job, failover event); true when queued.
    func insertResubmission(_ resubmission: StoredResubmission) throws -> Bool
    func saveResubmission(_ resubmission: StoredResubmission) throws
    // Reads for update: what a unit of work reads in order to change it (a store with concurrent
    // writers locks the rows it returns).

    /// Queued items due at `now` with a target hub: highest priority first, then oldest.
    func availableResubmissions(now: Date, limit: Int) throws -> [StoredResubmission]
    func expiredLeases(now: Date) throws -> [StoredResubmission]

    /// Marks a command that is still waiting `expired`.
    func expireCommand(id: String, at: Date) throws

    /// Stores a window unless one with the same `fingerprint` exists; returns the stored window
    /// and whether it is new (a duplicate is counted).
    func insertMaintenanceWindow(_ window: MaintenanceWindow, fingerprint: String) throws
        -> (window: MaintenanceWindow, created: Bool)
    /// Ends a window early at `at` (a window already over stays as it is).
    func endMaintenanceWindow(id: String, at: Date) throws

    /// Stores a drill as it stands now (inserted the first time).
    func saveDrill(_ drill: DrillView) throws

    func insertNotification(_ notification: NotificationView) throws
    func recordNotificationDelivered(id: String, at: Date) throws
    /// A delivery attempt failed: counts it and when to try again (`nil`: never, the row fails).
    func recordNotificationFailure(id: String, error: String, nextAttemptAt: Date?, at: Date) throws

    /// Appends one line of history, chained to the one before it.
    func append(_ event: EventDraft) throws

    /// Throws `StoreError.fenced` unless `holder` holds the leader lease under `epoch`, and keeps
    /// it from changing hands until this unit of work commits (singleton work's writes).
    func requireLease(holder: String, epoch: Int) throws

    /// Runs `work` so that, if it throws, everything it wrote is undone and the rest of the unit
    /// of work goes on (a savepoint).
    func inSavepoint<T>(_ work: () throws -> T) throws -> T

    /// Called before deciding on several deployments at once, with their ids sorted: a store with
    /// concurrent writers takes all their locks now, in that fixed order (two transactions never
    /// wait for each other), and may read their state in the same step. `from` is the earliest
    /// time the decisions will be made at. A store with a single writer has nothing to do.
    func prepareToDecide(deploymentIds: [String], from: Date) throws

    /// Called before a shared transaction's units run, with the rows they named: a store that
    /// reads over a network fetches them now, in one step. An embedded store has nothing to do.
    func readAhead(_ rows: ReadAhead) throws
}

extension ControlTransaction {
    public func prepareToDecide(deploymentIds: [String], from: Date) throws {}
    public func readAhead(_ rows: ReadAhead) throws {}
}

/// The units of work that share one transaction of a `sharedWrite`, and the control session they
/// share: signals are applied as each unit runs, or, for work a unit leaves to `finish()`, after
/// every unit ran; the engine decides and the state is saved once, in `finish()`, before the
/// transaction commits. The store calls `beginUnit()` before each unit,
/// `undoUnit()` when that unit threw (its savepoint was rolled back) and `finish()` last.
/// Confined to the transaction's thread, hence unchecked.
public final class SharedUnitsOfWork: @unchecked Sendable {
    public let transaction: any ControlTransaction
    /// True when the transaction holds a single unit: a failure in `finish()` can only be its own.
    public let isolated: Bool
    var session: SharedControlSession?
    /// The shared session as the current unit found it; nil when the unit found none.
    private var sessionBeforeUnit: SharedControlSession.Snapshot?
    /// What the units left for `finish()`, in the order they ran, and how much of it was there
    /// before the current unit.
    private var finishingWork: [FinishingWork] = []
    private var finishingWorkBeforeUnit = 0

    private struct FinishingWork {
        var deploymentIds: [String]
        var at: Date
        var run: (SharedUnitsOfWork) throws -> Void
    }

    public init(transaction: any ControlTransaction, isolated: Bool) {
        self.transaction = transaction
        self.isolated = isolated
    }

    public func beginUnit() {
        sessionBeforeUnit = session?.snapshot()
        finishingWorkBeforeUnit = finishingWork.count
    }

    /// Runs `work` in `finish()`, after every unit of the transaction ran and before the engine
    /// decides; `work` decides on `deploymentIds` at `at`. The ingest applies its signals so: a
    /// store that locks a deployment's state to read it (several instances) then takes the locks
    /// of the whole batch at once (`prepareToDecide`), and holds them while deciding only, not
    /// while the batch's other units store their deliveries. `work` is handed these units rather
    /// than capturing them, so a batch that fails before `finish()` leaves no reference cycle.
    public func atFinish(
        deciding deploymentIds: [String], at: Date, _ work: @escaping (SharedUnitsOfWork) throws -> Void
    ) {
        finishingWork.append(FinishingWork(deploymentIds: deploymentIds, at: at, run: work))
    }

    public func undoUnit() {
        finishingWork.removeSubrange(finishingWorkBeforeUnit...)
        if let sessionBeforeUnit {
            session?.restore(sessionBeforeUnit)
        } else {
            // A session made by the failed unit has nothing that outlives it.
            session = nil
        }
    }

    /// Decides and saves what the units applied. Storage trouble is rethrown; any other failure
    /// of a shared transaction is rethrown for the store to run the units alone; alone, the unit
    /// is kept (raw first) with the failure in the history.
    public func finish() throws {
        let work = finishingWork
        finishingWork = []
        if let from = work.map(\.at).min() {
            let deploymentIds = Set(work.flatMap(\.deploymentIds)).sorted()
            if !deploymentIds.isEmpty { try transaction.prepareToDecide(deploymentIds: deploymentIds, from: from) }
        }
        for unitWork in work { try unitWork.run(self) }
        try session?.finish(in: transaction, isolated: isolated)
    }
}

/// Counts read from the store when `/metrics` is scraped: the store is the truth, so the figures
/// survive restarts and agree with the API.
public struct StoredTallies: Sendable, Hashable {
    public struct OpenWindows: Sendable, Hashable {
        public var deploymentId: String
        public var hubId: String
        public var count: Int
        public init(deploymentId: String, hubId: String, count: Int) {
            self.deploymentId = deploymentId
            self.hubId = hubId
            self.count = count
        }
    }
    public struct Failovers: Sendable, Hashable {
        public var deploymentId: String
        public var trigger: String
        public var kind: String
        public var count: Int
        public init(deploymentId: String, trigger: String, kind: String, count: Int) {
            self.deploymentId = deploymentId
            self.trigger = trigger
            self.kind = kind
            self.count = count
        }
    }
    public var openWindows: [OpenWindows] = []
    public var failovers: [Failovers] = []
    public var commandsByStatus: [String: Int] = [:]
    public var resubmissionsByStatus: [String: Int] = [:]
    public init() {}
}

/// A training job as stored.
public struct StoredJob: Sendable, Hashable {
    public var id: String
    public var externalId: String
    public var deploymentId: String
    public var hubId: String
    /// The spec as canonical JSON text, and its SHA-256: a registration again with the same spec
    /// is recognised by the hash.
    public var spec: String
    public var specSHA256: String
    public var status: JobStatus
    public var priority: Int
    public var submittedAt: String?
    public var interruptedBy: String?
    public var resubmittedFrom: String?
    public var registeredBy: String
    public var createdAt: String
    public var updatedAt: String

    public init(
        id: String, externalId: String, deploymentId: String, hubId: String, spec: String, specSHA256: String,
        status: JobStatus, priority: Int, submittedAt: String?, interruptedBy: String?, resubmittedFrom: String?,
        registeredBy: String, createdAt: String, updatedAt: String
    ) {
        self.id = id
        self.externalId = externalId
        self.deploymentId = deploymentId
        self.hubId = hubId
        self.spec = spec
        self.specSHA256 = specSHA256
        self.status = status
        self.priority = priority
        self.submittedAt = submittedAt
        self.interruptedBy = interruptedBy
        self.resubmittedFrom = resubmittedFrom
        self.registeredBy = registeredBy
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

extension StoredJob {
    /// The job as the API shows it.
    public var view: JobView {
        JobView(
            id: id, externalId: externalId, deploymentId: deploymentId, hub: hubId,
            spec: JSONValue.parse(spec) ?? .null, status: status, priority: priority, submittedAt: submittedAt,
            interruptedBy: interruptedBy, resubmittedFrom: resubmittedFrom, registeredBy: registeredBy,
            createdAt: createdAt, updatedAt: updatedAt)
    }
}

extension StoredResubmission {
    /// The item as the API shows it, with its job's external id and, when asked, its spec.
    public func view(externalId: String, spec: JSONValue?) -> ResubmissionView {
        ResubmissionView(
            id: id, jobId: jobId, externalId: externalId, failoverEventId: failoverEventId,
            deploymentId: deploymentId, fromHub: fromHub, targetHub: targetHub, priority: priority, status: status,
            attempts: attempts, maxAttempts: maxAttempts, availableAt: availableAt, leaseOwner: leaseOwner,
            leaseExpiresAt: leaseExpiresAt, lastError: lastError, newJobId: newJobId, createdAt: createdAt,
            updatedAt: updatedAt, spec: spec)
    }
}

/// An item of the resubmission queue as stored.
public struct StoredResubmission: Sendable, Hashable {
    public var id: String
    public var jobId: String
    public var failoverEventId: String
    public var deploymentId: String
    public var fromHub: String
    public var targetHub: String?
    public var priority: Int
    public var status: ResubmissionStatus
    public var attempts: Int
    public var maxAttempts: Int
    public var availableAt: String
    public var leaseOwner: String?
    public var leaseExpiresAt: String?
    public var lastError: String?
    public var newJobId: String?
    public var createdAt: String
    public var updatedAt: String

    public init(
        id: String, jobId: String, failoverEventId: String, deploymentId: String, fromHub: String, targetHub: String?,
        priority: Int, status: ResubmissionStatus, attempts: Int, maxAttempts: Int, availableAt: String,
        leaseOwner: String?, leaseExpiresAt: String?, lastError: String?, newJobId: String?, createdAt: String,
        updatedAt: String
    ) {
        self.id = id
        self.jobId = jobId
        self.failoverEventId = failoverEventId
        self.deploymentId = deploymentId
        self.fromHub = fromHub
        self.targetHub = targetHub
        self.priority = priority
        self.status = status
        self.attempts = attempts
        self.maxAttempts = maxAttempts
        self.availableAt = availableAt
        self.leaseOwner = leaseOwner
        self.leaseExpiresAt = leaseExpiresAt
        self.lastError = lastError
        self.newJobId = newJobId
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}
