import Foundation
import Logging
import NIOCore
import PostgresNIO
import StandbyApp
import StandbyCore
import StandbyPrimitives

/// A unit of work on one PostgreSQL connection, inside its transaction (or a read-only snapshot).
///
/// Serialising decisions without a single writer: before a unit reads a deployment's routing
/// state or one of its hubs' tracker state, it takes that deployment's transaction-scoped advisory
/// lock, so two instances applying signals to one deployment run one after the other and the
/// second reads what the first committed. (A unit touching several deployments takes their locks
/// as it reaches them; should two such units deadlock, PostgreSQL aborts one and the store runs it
/// again.)
///
/// One chain across instances: appended events are kept here and written by `flushEvents()` just
/// before the commit, under the lock of the `chain_head` row, so the lock is held only for the
/// commit itself and every instance's events join one gapless chain.
final class PostgresTransaction: ControlTransaction, AlertRecords, @unchecked Sendable {
    let connection: PostgresConnection
    let logger: Logger
    let chain: EventChain
    let readOnly: Bool
    private var pendingEvents: [EventDraft] = []
    private var lockedDeployments: Set<String> = []
    private var savepointDepth = 0

    let timeout: TimeAmount

    init(connection: PostgresConnection, logger: Logger, chain: EventChain, readOnly: Bool, timeout: TimeAmount) {
        self.connection = connection
        self.logger = logger
        self.chain = chain
        self.readOnly = readOnly
        self.timeout = timeout
    }

    /// Waits for `future`; past the timeout the connection is closed, which fails the statement
    /// (storage trouble) instead of leaving the unit of work hanging on a server that went silent.
    private func wait<T: Sendable>(_ future: EventLoopFuture<T>) throws -> T {
        let connection = connection
        let timer = future.eventLoop.scheduleTask(in: timeout) { connection.closeQuietly() }
        defer { timer.cancel() }
        return try future.wait()
    }

    func rows(_ query: PostgresQuery) throws -> [PGRow] {
        try wait(connection.query(query, logger: logger)).rows.map(PGRow.init)
    }

    @discardableResult
    func execute(_ query: PostgresQuery) throws -> Int {
        try wait(connection.query(query, logger: logger)).metadata.rows ?? 0
    }

    func begin() throws {
        try execute(readOnly ? "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" : "BEGIN")
    }

    /// Writes the chained events last, then commits.
    func commit() throws {
        if !readOnly { try flushEvents() }
        try execute("COMMIT")
    }

    func rollback() {
        _ = try? execute("ROLLBACK")
    }

    /// Takes the deployment's lock once per transaction (a read-only snapshot takes none).
    private func lockDeployment(_ deploymentId: String) throws {
        guard !readOnly, !lockedDeployments.contains(deploymentId) else { return }
        try execute("SELECT pg_advisory_xact_lock(hashtextextended(\("deployment:" + deploymentId), 0))")
        lockedDeployments.insert(deploymentId)
    }

    // MARK: Reads

    /// Read from the table every time, never from a cache of this process: another instance may
    /// have changed it since (the deployment's lock makes this read current).
    func hubState(_ hub: HubReference) throws -> HubHealthState {
        try lockDeployment(hub.deploymentId)
        guard
            let row = try rows(
                "SELECT state FROM hub_health WHERE deployment_id = \(hub.deploymentId) AND hub_id = \(hub.hubId)"
            ).first
        else { return HubHealthState(deploymentId: hub.deploymentId, hubId: hub.hubId) }
        let text: String = try row["state"]
        return try JSONDecoder().decode(HubHealthState.self, from: Data(text.utf8))
    }

    func deploymentState(_ deploymentId: String) throws -> DeploymentState? {
        try lockDeployment(deploymentId)
        guard let row = try rows("SELECT state FROM deployment_state WHERE deployment_id = \(deploymentId)").first
        else { return nil }
        let text: String = try row["state"]
        return try JSONDecoder().decode(DeploymentState.self, from: Data(text.utf8))
    }

    func command(id: String) throws -> CommandView? {
        try rows("SELECT * FROM commands WHERE id = \(id)").first.map(Self.commandView)
    }

    func commandStatuses(failoverEventId: String) throws -> [CommandStatus] {
        try rows("SELECT status FROM commands WHERE failover_event_id = \(failoverEventId)").compactMap {
            CommandStatus(rawValue: try $0["status"])
        }
    }

    func commands(status: CommandStatus?, deploymentId: String?, page: PageRequest) throws -> Page<CommandView> {
        var filter = SQLStatement()
        filter.filter("status = ?", status?.rawValue)
        filter.filter("deployment_id = ?", deploymentId)
        return try page.fetch(self, from: "commands", filter: filter, ascending: true) {
            try Self.commandView($0)
        }
    }

    func deliverableCommands(deploymentIds: [String], now: Date, limit: Int) throws -> [CommandView] {
        try rows(
            """
            SELECT c.* FROM commands c
            WHERE c.status = 'pending' AND c.deployment_id = ANY(\(deploymentIds))
              AND c.next_attempt_at <= \(Timestamp.format(now))
              AND NOT EXISTS (
                  SELECT 1 FROM commands earlier
                  WHERE earlier.failover_event_id = c.failover_event_id AND earlier.position < c.position
                    AND earlier.status NOT IN ('delivered', 'succeeded'))
            ORDER BY c.seq LIMIT \(limit)
            """
        ).map(Self.commandView)
    }

    func failoverEvent(id: String) throws -> FailoverEventView? {
        try rows("SELECT * FROM failover_events WHERE id = \(id)").first.map(failoverEventView)
    }

    func latestFailoverEvent(deploymentId: String) throws -> FailoverEventView? {
        try rows("SELECT * FROM failover_events WHERE deployment_id = \(deploymentId) ORDER BY seq DESC LIMIT 1")
            .first.map(failoverEventView)
    }

    func failoverEvents(deploymentId: String?, page: PageRequest) throws -> Page<FailoverEventView> {
        var filter = SQLStatement()
        filter.filter("deployment_id = ?", deploymentId)
        return try page.fetch(self, from: "failover_events", filter: filter, ascending: false) {
            try failoverEventView($0)
        }
    }

    func failureWindows(hubId: String?, open: Bool?, page: PageRequest) throws -> Page<FailureWindowView> {
        var filter = SQLStatement()
        filter.filter("hub_id = ?", hubId)
        if let open { filter.filter(open ? "closed_at IS NULL" : "closed_at IS NOT NULL") }
        return try page.fetch(self, from: "failure_windows", filter: filter, ascending: false) {
            row in
            let closedAt: String? = try row["closed_at"]
            return FailureWindowView(
                id: try row["id"], deploymentId: try row["deployment_id"], hubId: try row["hub_id"],
                open: closedAt == nil, openedAt: try row["opened_at"], firstFailureAt: try row["first_failure_at"],
                lastFailureAt: try row["last_failure_at"], failureCount: try row["failure_count"],
                sources: JSONColumns.strings(try row["sources"]), evidence: JSONColumns.strings(try row["evidence"]),
                declaredDownAt: try row["declared_down_at"], closedAt: closedAt)
        }
    }

    func tallies() throws -> StoredTallies {
        var tallies = StoredTallies()
        tallies.openWindows = try rows(
            "SELECT deployment_id, hub_id, count(*) AS n FROM failure_windows WHERE closed_at IS NULL GROUP BY 1, 2"
        ).map {
            StoredTallies.OpenWindows(
                deploymentId: try $0["deployment_id"], hubId: try $0["hub_id"], count: try $0["n"])
        }
        tallies.failovers = try rows(
            "SELECT deployment_id, trigger, kind, count(*) AS n FROM failover_events GROUP BY 1, 2, 3"
        ).map {
            StoredTallies.Failovers(
                deploymentId: try $0["deployment_id"], trigger: try $0["trigger"], kind: try $0["kind"],
                count: try $0["n"])
        }
        tallies.commandsByStatus = try counts("SELECT status, count(*) AS n FROM commands GROUP BY 1")
        tallies.resubmissionsByStatus = try counts("SELECT status, count(*) AS n FROM resubmissions GROUP BY 1")
        return tallies
    }

    private func counts(_ query: PostgresQuery) throws -> [String: Int] {
        Dictionary(uniqueKeysWithValues: try rows(query).map { (try $0["status"] as String, try $0["n"] as Int) })
    }

    func job(id: String) throws -> StoredJob? {
        try rows("SELECT * FROM training_jobs WHERE id = \(id)").first.map(Self.job)
    }

    func job(externalId: String) throws -> StoredJob? {
        try rows("SELECT * FROM training_jobs WHERE external_id = \(externalId)").first.map(Self.job)
    }

    func jobView(id: String) throws -> JobView? {
        try job(id: id)?.view
    }

    func jobs(status: JobStatus?, hubId: String?, page: PageRequest) throws -> Page<JobView> {
        var filter = SQLStatement()
        filter.filter("status = ?", status?.rawValue)
        filter.filter("hub_id = ?", hubId)
        return try page.fetch(self, from: "training_jobs", filter: filter, ascending: false) {
            try Self.job($0).view
        }
    }

    func resubmission(id: String) throws -> StoredResubmission? {
        try rows("SELECT * FROM resubmissions WHERE id = \(id)").first.map(Self.resubmission)
    }

    func resubmissionView(id: String, withSpec: Bool) throws -> ResubmissionView? {
        guard
            let row = try rows(
                """
                SELECT r.*, j.external_id, j.spec FROM resubmissions r JOIN training_jobs j ON j.id = r.job_id
                WHERE r.id = \(id)
                """
            ).first
        else { return nil }
        return try Self.resubmissionView(row, spec: withSpec ? JSONValue.parse(try row["spec"] as String) : nil)
    }

    func resubmissions(status: ResubmissionStatus?, page: PageRequest) throws -> Page<ResubmissionView> {
        var filter = SQLStatement()
        filter.filter("r.status = ?", status?.rawValue)
        return try page.fetch(
            self, select: "r.*, j.external_id",
            from: "resubmissions r JOIN training_jobs j ON j.id = r.job_id", filter: filter, ascending: true,
            seqColumn: "r.seq"
        ) { try Self.resubmissionView($0, spec: nil) }
    }

    func expiredLeaseCount(now: Date) throws -> Int {
        try rows(
            "SELECT count(*) AS n FROM resubmissions WHERE status = 'leased' AND lease_expires_at <= \(Timestamp.format(now))"
        ).first?["n"] ?? 0
    }

    // MARK: Writes

    func storeReport(_ report: HealthReportInput, receivedAt: Date, actor: String) throws -> String {
        try rows(
            """
            INSERT INTO health_reports
                (id, deployment_id, hub_id, source, outcome, observed_at, received_at, latency_ms, status_code,
                 detail, actor)
            VALUES (\(report.id), \(report.deploymentId), \(report.hubId), \(report.source),
                    \(report.outcome.rawValue), \(Timestamp.format(report.observedAt)), \(Timestamp.format(receivedAt)),
                    \(report.latencyMs), \(report.statusCode), \(report.detail), \(actor))
            ON CONFLICT (hub_id, source, observed_at)
                DO UPDATE SET duplicate_count = health_reports.duplicate_count + 1
            RETURNING id
            """
        ).first?["id"] ?? report.id
    }

    func storeDelivery(_ delivery: IncomingDelivery, content: DeliveryContent, ids: any IDSource) throws
        -> IngestResult
    {
        try record(delivery, content: content, ids: ids)
    }

    func saveHubState(_ state: HubHealthState, for hub: HubReference, at: Date) throws {
        let revision = String(UInt64.random(in: 1...UInt64.max), radix: 36)
        try execute(
            """
            INSERT INTO hub_health (deployment_id, hub_id, health, state, revision, updated_at)
            VALUES (\(hub.deploymentId), \(hub.hubId), \(state.health.rawValue), \(state.jsonValue().compactString()),
                    \(revision), \(Timestamp.format(at)))
            ON CONFLICT (deployment_id, hub_id) DO UPDATE SET health = excluded.health, state = excluded.state,
                revision = excluded.revision, updated_at = excluded.updated_at
            """)
    }

    func saveDeploymentState(_ state: DeploymentState, deploymentId: String, at: Date) throws {
        let text = String(decoding: try JSONEncoder().encode(state), as: UTF8.self)
        try execute(
            """
            INSERT INTO deployment_state (deployment_id, state, updated_at)
            VALUES (\(deploymentId), \(text), \(Timestamp.format(at)))
            ON CONFLICT (deployment_id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at
            """)
    }

    func saveFailureWindow(_ window: FailureWindow, at: Date) throws {
        try execute(
            """
            INSERT INTO failure_windows
                (id, deployment_id, hub_id, opened_at, first_failure_at, last_failure_at, failure_count, sources,
                 evidence, declared_down_at, closed_at, updated_at)
            VALUES (\(window.id), \(window.deploymentId), \(window.hubId), \(Timestamp.format(window.openedAt)),
                    \(Timestamp.format(window.firstFailureAt)), \(Timestamp.format(window.lastFailureAt)),
                    \(window.failureCount), \(JSONValue.strings(window.sources).canonicalString()),
                    \(JSONValue.strings(window.evidence).canonicalString()),
                    \(window.declaredDownAt.map(Timestamp.format)), \(window.closedAt.map(Timestamp.format)),
                    \(Timestamp.format(at)))
            ON CONFLICT (id) DO UPDATE SET first_failure_at = excluded.first_failure_at,
                last_failure_at = excluded.last_failure_at, failure_count = excluded.failure_count,
                sources = excluded.sources, evidence = excluded.evidence,
                declared_down_at = excluded.declared_down_at, closed_at = excluded.closed_at,
                updated_at = excluded.updated_at
            """)
    }

    func insertFailoverEvent(_ plan: FailoverPlan, status: FailoverEventStatus, at date: Date) throws {
        let at = Timestamp.format(date)
        let settledAt: String? = status == .open ? nil : at
        try execute(
            """
            INSERT INTO failover_events
                (id, deployment_id, kind, trigger, from_hub, to_hub, reason, rule, evidence, actor, dry_run, status,
                 created_at, settled_at)
            VALUES (\(plan.id), \(plan.deploymentId), \(plan.kind.rawValue), \(plan.trigger.rawValue), \(plan.fromHub),
                    \(plan.toHub), \(plan.reason), \(plan.rule), \(JSONValue.strings(plan.evidence).canonicalString()),
                    \(plan.actor), \(plan.dryRun), \(status.rawValue), \(at), \(settledAt))
            """)
        let initial = CommandStatus.initial(dryRun: plan.dryRun).rawValue
        let nextAttemptAt: String? = plan.dryRun ? nil : at
        for (position, command) in plan.commands.enumerated() {
            let parameters = JSONValue.object(command.parameters.mapValues(JSONValue.string)).canonicalString()
            try execute(
                """
                INSERT INTO commands
                    (id, deployment_id, failover_event_id, position, kind, hub, from_hub, to_hub, parameters,
                     status, created_at, updated_at, next_attempt_at)
                VALUES (\(command.id), \(plan.deploymentId), \(plan.id), \(position), \(command.kind.rawValue),
                        \(command.hub), \(command.fromHub), \(command.toHub), \(parameters), \(initial), \(at), \(at),
                        \(nextAttemptAt))
                """)
        }
    }

    func settleFailoverEvent(id: String, status: FailoverEventStatus, at: Date) throws {
        try execute(
            """
            UPDATE failover_events SET status = \(status.rawValue), settled_at = \(Timestamp.format(at))
            WHERE id = \(id) AND status = 'open'
            """)
    }

    func supersedeFailoverEvent(id: String, at: Date) throws {
        try settleFailoverEvent(id: id, status: .superseded, at: at)
        try execute(
            """
            UPDATE commands SET status = 'superseded', updated_at = \(Timestamp.format(at))
            WHERE failover_event_id = \(id) AND status IN ('pending', 'delivered')
            """)
    }

    func recordAcknowledgement(
        commandId: String, outcome: CommandAckOutcome, detail: String?, actor: String, at date: Date
    ) throws {
        let at = Timestamp.format(date)
        try execute(
            """
            UPDATE commands SET status = \(outcome.rawValue), ack_outcome = \(outcome.rawValue),
                ack_detail = \(detail), ack_actor = \(actor), acked_at = \(at), updated_at = \(at)
            WHERE id = \(commandId)
            """)
    }

    func countDuplicateAcknowledgement(commandId: String) throws {
        try execute("UPDATE commands SET ack_duplicates = ack_duplicates + 1 WHERE id = \(commandId)")
    }

    func recordPushDelivered(commandId: String, at: Date) throws {
        try execute(
            """
            UPDATE commands SET delivery_attempts = delivery_attempts + 1, last_error = NULL,
                status = CASE status WHEN 'pending' THEN 'delivered' ELSE status END,
                updated_at = \(Timestamp.format(at))
            WHERE id = \(commandId)
            """)
    }

    func recordPushFailure(commandId: String, error: String, nextAttemptAt: Date?, at: Date) throws {
        try execute(
            """
            UPDATE commands SET delivery_attempts = delivery_attempts + 1, last_error = \(error),
                next_attempt_at = \(nextAttemptAt.map(Timestamp.format)), updated_at = \(Timestamp.format(at))
            WHERE id = \(commandId) AND status = 'pending'
            """)
    }

    func insertJob(_ job: StoredJob) throws {
        try execute(
            """
            INSERT INTO training_jobs
                (id, external_id, deployment_id, hub_id, spec, spec_sha256, status, priority, submitted_at,
                 interrupted_by, resubmitted_from, registered_by, created_at, updated_at)
            VALUES (\(job.id), \(job.externalId), \(job.deploymentId), \(job.hubId), \(job.spec), \(job.specSHA256),
                    \(job.status.rawValue), \(job.priority), \(job.submittedAt), \(job.interruptedBy),
                    \(job.resubmittedFrom), \(job.registeredBy), \(job.createdAt), \(job.updatedAt))
            """)
    }

    func saveJob(_ job: StoredJob) throws {
        try execute(
            """
            UPDATE training_jobs SET status = \(job.status.rawValue), interrupted_by = \(job.interruptedBy),
                resubmitted_from = \(job.resubmittedFrom), updated_at = \(job.updatedAt)
            WHERE id = \(job.id)
            """)
    }

    func runningJobs(hubId: String) throws -> [StoredJob] {
        try rows("SELECT * FROM training_jobs WHERE hub_id = \(hubId) AND status = 'running' ORDER BY seq FOR UPDATE")
            .map(Self.job)
    }

    func insertResubmission(_ item: StoredResubmission) throws -> Bool {
        try execute(
            """
            INSERT INTO resubmissions
                (id, job_id, failover_event_id, deployment_id, from_hub, target_hub, priority, status, attempts,
                 max_attempts, available_at, lease_owner, lease_expires_at, last_error, new_job_id, created_at,
                 updated_at)
            VALUES (\(item.id), \(item.jobId), \(item.failoverEventId), \(item.deploymentId), \(item.fromHub),
                    \(item.targetHub), \(item.priority), \(item.status.rawValue), \(item.attempts), \(item.maxAttempts),
                    \(item.availableAt), \(item.leaseOwner), \(item.leaseExpiresAt), \(item.lastError),
                    \(item.newJobId), \(item.createdAt), \(item.updatedAt))
            ON CONFLICT DO NOTHING
            """) > 0
    }

    func saveResubmission(_ item: StoredResubmission) throws {
        try execute(
            """
            UPDATE resubmissions SET target_hub = \(item.targetHub), status = \(item.status.rawValue),
                attempts = \(item.attempts), available_at = \(item.availableAt), lease_owner = \(item.leaseOwner),
                lease_expires_at = \(item.leaseExpiresAt), last_error = \(item.lastError),
                new_job_id = \(item.newJobId), updated_at = \(item.updatedAt)
            WHERE id = \(item.id)
            """)
    }

    /// Claims across instances: rows another transaction has locked are skipped, never waited
    /// for, so concurrent claims on different instances never get the same item.
    func availableResubmissions(now: Date, limit: Int) throws -> [StoredResubmission] {
        try rows(
            """
            SELECT * FROM resubmissions
            WHERE status = 'queued' AND available_at <= \(Timestamp.format(now)) AND target_hub IS NOT NULL
            ORDER BY priority DESC, seq ASC LIMIT \(limit)
            FOR UPDATE SKIP LOCKED
            """
        ).map(Self.resubmission)
    }

    func expiredLeases(now: Date) throws -> [StoredResubmission] {
        try rows(
            """
            SELECT * FROM resubmissions WHERE status = 'leased' AND lease_expires_at <= \(Timestamp.format(now))
            FOR UPDATE SKIP LOCKED
            """
        ).map(Self.resubmission)
    }

    func append(_ event: EventDraft) throws {
        pendingEvents.append(event)
    }

    func requireLease(holder: String, epoch: Int) throws {
        // FOR SHARE: the lease cannot change hands until this transaction ends, so nothing this
        // unit writes commits after another instance took over.
        let held = try rows(
            """
            SELECT 1 FROM leases
            WHERE name = 'leader' AND holder = \(holder) AND epoch = \(epoch) AND expires_at > now()
            FOR SHARE
            """)
        guard !held.isEmpty else {
            throw StoreError.fenced("instance \(holder) no longer holds the leader lease under epoch \(epoch)")
        }
    }

    func inSavepoint<T>(_ work: () throws -> T) throws -> T {
        savepointDepth += 1
        defer { savepointDepth -= 1 }
        let name = "standby_unit_\(savepointDepth)"
        let events = pendingEvents.count
        let locks = lockedDeployments
        try execute(PostgresQuery(unsafeSQL: "SAVEPOINT \(name)"))
        do {
            let value = try work()
            try execute(PostgresQuery(unsafeSQL: "RELEASE SAVEPOINT \(name)"))
            return value
        } catch {
            pendingEvents.removeSubrange(events...)
            lockedDeployments = locks
            // A broken connection fails these too; the commit then reports it.
            _ = try? execute(PostgresQuery(unsafeSQL: "ROLLBACK TO SAVEPOINT \(name)"))
            _ = try? execute(PostgresQuery(unsafeSQL: "RELEASE SAVEPOINT \(name)"))
            throw error
        }
    }

    /// Chains and writes the events this transaction appended, under the chain head's row lock,
    /// as its last statements before the commit.
    func flushEvents() throws {
        guard !pendingEvents.isEmpty else { return }
        guard let head = try rows("SELECT seq, hash FROM chain_head WHERE id = 1 FOR UPDATE").first else {
            throw StoreError.unavailable("the chain_head row is missing: the schema is not migrated")
        }
        var seq: Int64 = Int64(try head["seq"] as Int)
        var prevHash: String = try head["hash"]
        // Multi-row inserts of at most 500 events (9 values each, far below PostgreSQL's 65535).
        for chunk in stride(from: 0, to: pendingEvents.count, by: 500) {
            var statement = SQLStatement(
                "INSERT INTO events (seq, at, type, deployment_id, hub, actor, data, prev_hash, hash) VALUES ")
            var values: [String] = []
            for draft in pendingEvents[chunk..<min(chunk + 500, pendingEvents.count)] {
                seq += 1
                let (event, dataText) = chain.link(draft, seq: seq, prevHash: prevHash)
                prevHash = event.hash
                values.append(
                    "("
                        + [
                            statement.bind(Int(event.seq)), statement.bind(event.at), statement.bind(event.type),
                            statement.bind(event.deploymentId), statement.bind(event.hub), statement.bind(event.actor),
                            statement.bind(dataText), statement.bind(event.prevHash), statement.bind(event.hash),
                        ].joined(separator: ", ") + ")")
            }
            statement.append(values.joined(separator: ", "))
            try execute(statement.query)
        }
        try execute("UPDATE chain_head SET seq = \(Int(seq)), hash = \(prevHash) WHERE id = 1")
        pendingEvents = []
    }

    // MARK: Alert records

    func alertHead(key: String) throws -> StoredAlertHead? {
        try rows(
            """
            SELECT id, condition, state_fingerprint, observed_at, fired_at, duplicate_count
            FROM alerts WHERE alert_key = \(key)
            """
        ).first.map {
            StoredAlertHead(
                id: try $0["id"], condition: (try $0["condition"] as String?).flatMap(AlertCondition.init(rawValue:)),
                stateFingerprint: try $0["state_fingerprint"], observedAt: try $0["observed_at"],
                firedAt: try $0["fired_at"], duplicateCount: try $0["duplicate_count"])
        }
    }

    func insertAlert(
        id: String, key: String, alert: NormalizedAlert, columns: AlertColumns, deliveryId: String, at: String
    ) throws {
        try execute(
            """
            INSERT INTO alerts
                (id, alert_key, status, azure_alert_id, rule, severity, signal_type, monitoring_service, schema,
                 kind, condition, target_ids, hubs, fired_at, resolved_at, observed_at, description, is_test,
                 details, state_fingerprint, first_delivery_id, last_delivery_id, created_at, updated_at)
            VALUES (\(id), \(key), 'recognized', \(alert.azureAlertId), \(alert.rule), \(columns.severity),
                    \(alert.signalType), \(alert.monitoringService), \(alert.schema.rawValue), \(alert.kind.rawValue),
                    \(columns.condition), \(columns.targetIds), \(columns.hubs), \(columns.firedAt),
                    \(alert.resolvedAt.map(Timestamp.format)), \(columns.observedAt), \(columns.description),
                    \(alert.isTest), \(columns.details), \(columns.stateFingerprint), \(deliveryId), \(deliveryId),
                    \(at), \(at))
            """)
    }

    func insertOpaqueAlert(
        id: String, key: String, status: AlertStatus, details: String, deliveryId: String, at: String
    ) throws {
        try execute(
            """
            INSERT INTO alerts (id, alert_key, status, details, first_delivery_id, last_delivery_id, created_at,
                updated_at)
            VALUES (\(id), \(key), \(status.rawValue), \(details), \(deliveryId), \(deliveryId), \(at), \(at))
            """)
    }

    func countDuplicateDelivery(alertId: String, deliveryId: String) throws {
        try execute(
            """
            UPDATE alerts SET duplicate_count = duplicate_count + 1, delivery_count = delivery_count + 1,
                last_delivery_id = \(deliveryId)
            WHERE id = \(alertId)
            """)
    }

    func updateAlert(id: String, columns: AlertColumns, deliveryId: String, at: String) throws {
        try execute(
            """
            UPDATE alerts SET condition = \(columns.condition), severity = COALESCE(\(columns.severity), severity),
                fired_at = \(columns.firedAt), resolved_at = \(columns.resolvedAt), observed_at = \(columns.observedAt),
                details = \(columns.details), state_fingerprint = \(columns.stateFingerprint), hubs = \(columns.hubs),
                target_ids = \(columns.targetIds), description = COALESCE(\(columns.description), description),
                delivery_count = delivery_count + 1, last_delivery_id = \(deliveryId), updated_at = \(at)
            WHERE id = \(id)
            """)
    }

    func replaceAlertHubs(alertId: String, hubs: [HubReference], replacing: Bool) throws {
        if replacing { try execute("DELETE FROM alert_hubs WHERE alert_id = \(alertId)") }
        for hub in hubs {
            try execute(
                """
                INSERT INTO alert_hubs (alert_id, deployment_id, hub_id) VALUES (\(alertId), \(hub.deploymentId),
                    \(hub.hubId))
                ON CONFLICT DO NOTHING
                """)
        }
    }

    func insertDelivery(
        _ delivery: IncomingDelivery, outcome: DeliveryOutcome, schema: String?, alertId: String, detail: String?
    ) throws {
        try execute(
            """
            INSERT INTO deliveries
                (id, received_at, remote_address, content_type, body, sha256, byte_count, outcome, schema,
                 alert_id, detail)
            VALUES (\(delivery.id), \(Timestamp.format(delivery.receivedAt)), \(delivery.remoteAddress),
                    \(delivery.contentType), \(ByteBuffer(bytes: delivery.body)), \(delivery.sha256),
                    \(delivery.body.count), \(outcome.rawValue), \(schema), \(alertId), \(detail))
            """)
    }

    // MARK: Rows

    static func commandView(_ row: PGRow) throws -> CommandView {
        let parameters =
            JSONValue.parse(try row["parameters"] as String)?.objectValue?.compactMapValues(\.stringValue) ?? [:]
        return CommandView(
            id: try row["id"], deploymentId: try row["deployment_id"], failoverEventId: try row["failover_event_id"],
            position: try row["position"], kind: try row["kind"], hub: try row["hub"], fromHub: try row["from_hub"],
            toHub: try row["to_hub"], parameters: parameters,
            status: CommandStatus(rawValue: try row["status"]) ?? .pending, createdAt: try row["created_at"],
            updatedAt: try row["updated_at"], ackOutcome: try row["ack_outcome"], ackDetail: try row["ack_detail"],
            ackActor: try row["ack_actor"], ackedAt: try row["acked_at"],
            deliveryAttempts: try row["delivery_attempts"], lastError: try row["last_error"])
    }

    private func failoverEventView(_ row: PGRow) throws -> FailoverEventView {
        let id: String = try row["id"]
        return FailoverEventView(
            id: id, deploymentId: try row["deployment_id"], kind: try row["kind"], trigger: try row["trigger"],
            fromHub: try row["from_hub"], toHub: try row["to_hub"], reason: try row["reason"], rule: try row["rule"],
            evidence: JSONColumns.strings(try row["evidence"]), actor: try row["actor"], dryRun: try row["dry_run"],
            status: FailoverEventStatus(rawValue: try row["status"]) ?? .open, createdAt: try row["created_at"],
            settledAt: try row["settled_at"],
            commands: try rows("SELECT * FROM commands WHERE failover_event_id = \(id) ORDER BY position").map(
                Self.commandView))
    }

    static func job(_ row: PGRow) throws -> StoredJob {
        StoredJob(
            id: try row["id"], externalId: try row["external_id"], deploymentId: try row["deployment_id"],
            hubId: try row["hub_id"], spec: try row["spec"], specSHA256: try row["spec_sha256"],
            status: JobStatus(rawValue: try row["status"]) ?? .running, priority: try row["priority"],
            submittedAt: try row["submitted_at"], interruptedBy: try row["interrupted_by"],
            resubmittedFrom: try row["resubmitted_from"], registeredBy: try row["registered_by"],
            createdAt: try row["created_at"], updatedAt: try row["updated_at"])
    }

    static func resubmission(_ row: PGRow) throws -> StoredResubmission {
        StoredResubmission(
            id: try row["id"], jobId: try row["job_id"], failoverEventId: try row["failover_event_id"],
            deploymentId: try row["deployment_id"], fromHub: try row["from_hub"], targetHub: try row["target_hub"],
            priority: try row["priority"], status: ResubmissionStatus(rawValue: try row["status"]) ?? .queued,
            attempts: try row["attempts"], maxAttempts: try row["max_attempts"],
            availableAt: try row["available_at"], leaseOwner: try row["lease_owner"],
            leaseExpiresAt: try row["lease_expires_at"], lastError: try row["last_error"],
            newJobId: try row["new_job_id"], createdAt: try row["created_at"], updatedAt: try row["updated_at"])
    }

    static func resubmissionView(_ row: PGRow, spec: JSONValue?) throws -> ResubmissionView {
        try resubmission(row).view(externalId: try row["external_id"], spec: spec)
    }
}
