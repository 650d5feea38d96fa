import Foundation
import GRDB
import StandbyCore
import StandbyPrimitives

/// Training jobs and the leased resubmission queue. Every change is one write transaction; the
/// single SQLite writer is what makes a claim atomic, so no item is handed to two workers.
public final class JobQueue: Sendable {
    let database: StandbyDatabase
    let topology: Topology
    public let settings: QueueSettings
    let ids: any IDSource
    let random: @Sendable () -> Double

    public init(
        database: StandbyDatabase, topology: Topology, settings: QueueSettings = QueueSettings(),
        ids: any IDSource = TimeOrderedIDSource(),
        random: @escaping @Sendable () -> Double = { Double.random(in: 0...1) }
    ) {
        self.database = database
        self.topology = topology
        self.settings = settings
        self.ids = ids
        self.random = random
    }

    // MARK: Jobs

    /// Registers a job; the same externalId with the same content again is a no-op (`created` false).
    public func register(_ job: JobRegistration, actor: String, now: Date) async throws -> (JobView, created: Bool) {
        try await StoreError.mapping {
            try await database.pool.write { db in
                let spec = job.spec.canonicalString()
                let specHash = Data(spec.utf8).sha256Hex
                if let existing = try Row.fetchOne(
                    db, sql: "SELECT * FROM training_jobs WHERE external_id = ?", arguments: [job.externalId])
                {
                    let same =
                        existing["hub_id"] == job.hubId && existing["spec_sha256"] == specHash
                        && existing["priority"] == job.priority
                        && existing["submitted_at"] == job.submittedAt.map(Timestamp.format)
                    guard same else {
                        throw StoreError.conflict(
                            "job \(job.externalId) is already registered with different content")
                    }
                    return (Self.jobView(existing), false)
                }
                let id = self.ids.next()
                let at = Timestamp.format(now)
                try db.execute(
                    sql: """
                        INSERT INTO training_jobs
                            (id, external_id, deployment_id, hub_id, spec, spec_sha256, status, priority, submitted_at,
                             registered_by, created_at, updated_at)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        id, job.externalId, job.deploymentId, job.hubId, spec, specHash, job.status.rawValue,
                        job.priority, job.submittedAt.map(Timestamp.format), actor, at, at,
                    ])
                try self.database.chain.append(
                    EventDraft(
                        type: "job.registered", at: now, deploymentId: job.deploymentId, hub: job.hubId, actor: actor,
                        data: .object([
                            "jobId": .string(id), "externalId": .string(job.externalId),
                            "status": .string(job.status.rawValue),
                        ])), in: db)
                return (try Self.job(id: id, db: db)!, true)
            }
        }
    }

    public func updateJob(idOrExternalId: String, to status: JobStatus, actor: String, now: Date) async throws
        -> JobView
    {
        try await StoreError.mapping {
            try await database.pool.write { db in
                guard let row = try Self.jobRow(idOrExternalId, db: db) else {
                    throw StoreError.notFound("job \(idOrExternalId)")
                }
                let current = JobStatus(rawValue: row["status"]) ?? .running
                let id: String = row["id"]
                if current == status { return Self.jobView(row) }
                guard current.canMove(to: status) else {
                    throw StoreError.conflict(
                        "job \(row["external_id"] as String) is \(current.rawValue); it cannot become \(status.rawValue)"
                    )
                }
                try db.execute(
                    sql: "UPDATE training_jobs SET status = ?, updated_at = ? WHERE id = ?",
                    arguments: [status.rawValue, Timestamp.format(now), id])
                try self.database.chain.append(
                    EventDraft(
                        type: "job.updated", at: now, deploymentId: row["deployment_id"], hub: row["hub_id"],
                        actor: actor,
                        data: .object([
                            "jobId": .string(id), "from": .string(current.rawValue), "to": .string(status.rawValue),
                        ])), in: db)
                return try Self.job(id: id, db: db)!
            }
        }
    }

    public func jobs(status: JobStatus?, hub: String?, page: PageRequest) async throws -> Page<JobView> {
        try await StoreError.mapping {
            try await database.pool.read { db in
                var filter = SQLFilter()
                filter.add("status = ?", status?.rawValue)
                filter.add("hub_id = ?", hub)
                return try page.fetch(db, from: "training_jobs", filter: filter, ascending: false, Self.jobView)
            }
        }
    }

    public func job(idOrExternalId: String) async throws -> JobView? {
        try await StoreError.mapping {
            try await database.pool.read { db in try Self.jobRow(idOrExternalId, db: db).map(Self.jobView) }
        }
    }

    // MARK: Interruption (inside the failover's transaction)

    /// Marks every job running on the failed hubs interrupted and queues one resubmission per
    /// (job, failover event). Replaying the same event queues nothing new.
    static func interrupt(
        for plan: FailoverPlan, in db: Database, chain: EventChain, ids: any IDSource, now: Date, maxAttempts: Int
    ) throws {
        guard !plan.dryRun, !plan.interruptedHubs.isEmpty else { return }
        let at = Timestamp.format(now)
        for hub in plan.interruptedHubs {
            let jobs = try Row.fetchAll(
                db,
                sql:
                    "SELECT id, external_id, priority FROM training_jobs WHERE hub_id = ? AND status = 'running' ORDER BY seq",
                arguments: [hub])
            for job in jobs {
                let jobId: String = job["id"]
                try db.execute(
                    sql:
                        "UPDATE training_jobs SET status = 'interrupted', interrupted_by = ?, updated_at = ? WHERE id = ?",
                    arguments: [plan.id, at, jobId])
                let resubmissionId = ids.next()
                try db.execute(
                    sql: """
                        INSERT INTO resubmissions
                            (id, job_id, failover_event_id, deployment_id, from_hub, target_hub, priority, status,
                             max_attempts, available_at, created_at, updated_at)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                        ON CONFLICT (job_id, failover_event_id) DO NOTHING
                        """,
                    arguments: [
                        resubmissionId, jobId, plan.id, plan.deploymentId, hub, plan.resubmitTo, job["priority"],
                        plan.resubmitTo == nil ? "unassigned" : "queued", maxAttempts, at, at, at,
                    ])
                let queued = db.changesCount > 0
                try chain.append(
                    EventDraft(
                        type: "job.interrupted", at: now, deploymentId: plan.deploymentId, hub: hub, actor: "standby",
                        data: .object([
                            "jobId": .string(jobId), "externalId": .string(job["external_id"]),
                            "failoverEventId": .string(plan.id),
                        ])), in: db)
                if queued {
                    try chain.append(
                        EventDraft(
                            type: "resubmission.queued", at: now, deploymentId: plan.deploymentId,
                            hub: plan.resubmitTo, actor: "standby",
                            data: .object([
                                "resubmissionId": .string(resubmissionId), "jobId": .string(jobId),
                                "targetHub": .optional(plan.resubmitTo),
                                "status": .string(plan.resubmitTo == nil ? "unassigned" : "queued"),
                            ])), in: db)
                }
            }
        }
    }

    // MARK: The queue

    /// Leases up to `limit` available items to `worker`: highest priority first, then oldest.
    public func claim(worker: String, limit: Int, leaseSeconds: TimeInterval, now: Date) async throws
        -> [ResubmissionView]
    {
        try await claim(worker: worker, limit: limit, leaseSeconds: leaseSeconds, now: now) { $0 }
    }

    /// Leases up to `limit` items to `worker` and builds the answer with `respond` inside the same
    /// transaction: when the answer cannot be built, the leases are rolled back with it, so a
    /// worker never holds items it was never told about.
    public func claim<Response: Sendable>(
        worker: String, limit: Int, leaseSeconds: TimeInterval, now: Date,
        respond: @escaping @Sendable ([ResubmissionView]) throws -> Response
    ) async throws -> Response {
        try await StoreError.mapping {
            try await database.pool.write { db in
                try self.expireLeases(in: db, now: now)
                let at = Timestamp.format(now)
                let ids = try String.fetchAll(
                    db,
                    sql: """
                        SELECT id FROM resubmissions
                        WHERE status = 'queued' AND available_at <= ? AND target_hub IS NOT NULL
                        ORDER BY priority DESC, seq ASC LIMIT ?
                        """,
                    arguments: [at, limit])
                let expires = Timestamp.format(now.addingTimeInterval(leaseSeconds))
                for id in ids {
                    try db.execute(
                        sql: """
                            UPDATE resubmissions SET status = 'leased', lease_owner = ?, lease_expires_at = ?,
                                attempts = attempts + 1, updated_at = ? WHERE id = ?
                            """,
                        arguments: [worker, expires, at, id])
                    try self.appendEvent(
                        "resubmission.claimed", id: id, actor: worker, now: now, db: db,
                        extra: ["worker": .string(worker), "leaseExpiresAt": .string(expires)])
                }
                return try respond(try ids.map { try Self.resubmission(id: $0, db: db, withSpec: true)! })
            }
        }
    }

    public func heartbeat(id: String, worker: String, leaseSeconds: TimeInterval, now: Date) async throws
        -> ResubmissionView
    {
        try await StoreError.mapping {
            try await database.pool.write { db in
                try self.requireLease(id: id, worker: worker, now: now, db: db)
                try db.execute(
                    sql: "UPDATE resubmissions SET lease_expires_at = ?, updated_at = ? WHERE id = ?",
                    arguments: [Timestamp.format(now.addingTimeInterval(leaseSeconds)), Timestamp.format(now), id])
                return try Self.resubmission(id: id, db: db, withSpec: false)!
            }
        }
    }

    /// Completes an item and records the job the worker started in the surviving hub.
    public func complete(id: String, worker: String, newExternalId: String, now: Date) async throws -> ResubmissionView
    {
        try await StoreError.mapping {
            try await database.pool.write { db in
                let item = try self.requireLease(id: id, worker: worker, now: now, db: db)
                let at = Timestamp.format(now)
                let targetHub: String = item["target_hub"]
                let original = try Row.fetchOne(
                    db, sql: "SELECT * FROM training_jobs WHERE id = ?", arguments: [item["job_id"] as String])!
                let newJobId: String
                if let existing = try Row.fetchOne(
                    db, sql: "SELECT id, hub_id FROM training_jobs WHERE external_id = ?", arguments: [newExternalId])
                {
                    guard existing["hub_id"] == targetHub else {
                        throw StoreError.conflict("job \(newExternalId) is registered on another hub than \(targetHub)")
                    }
                    newJobId = existing["id"]
                    try db.execute(
                        sql: "UPDATE training_jobs SET resubmitted_from = ?, updated_at = ? WHERE id = ?",
                        arguments: [original["id"] as String, at, newJobId])
                } else {
                    newJobId = self.ids.next()
                    try db.execute(
                        sql: """
                            INSERT INTO training_jobs
                                (id, external_id, deployment_id, hub_id, spec, spec_sha256, status, priority, submitted_at,
                                 resubmitted_from, registered_by, created_at, updated_at)
                            VALUES (?, ?, ?, ?, ?, ?, 'running', ?, ?, ?, ?, ?, ?)
                            """,
                        arguments: [
                            newJobId, newExternalId, original["deployment_id"] as String, targetHub,
                            original["spec"] as String, original["spec_sha256"] as String, original["priority"] as Int,
                            at, original["id"] as String, worker, at, at,
                        ])
                }
                try db.execute(
                    sql: """
                        UPDATE resubmissions SET status = 'completed', new_job_id = ?, lease_owner = NULL,
                            lease_expires_at = NULL, updated_at = ? WHERE id = ?
                        """,
                    arguments: [newJobId, at, id])
                try self.appendEvent(
                    "resubmission.completed", id: id, actor: worker, now: now, db: db,
                    extra: ["newJobId": .string(newJobId), "newExternalId": .string(newExternalId)])
                return try Self.resubmission(id: id, db: db, withSpec: false)!
            }
        }
    }

    /// A worker could not resubmit: retry later with backoff, or give up after `maxAttempts`.
    public func fail(id: String, worker: String, error: String, now: Date) async throws -> ResubmissionView {
        let random = self.random()
        return try await StoreError.mapping {
            try await database.pool.write { db in
                let item = try self.requireLease(id: id, worker: worker, now: now, db: db)
                try self.scheduleRetry(item, error: error, random: random, now: now, db: db, actor: worker)
                return try Self.resubmission(id: id, db: db, withSpec: false)!
            }
        }
    }

    /// Operator: revive a dead (or unassigned, or cancelled) item, optionally aimed at another hub.
    public func retry(id: String, targetHub: String?, actor: String, now: Date) async throws -> ResubmissionView {
        try await StoreError.mapping {
            try await database.pool.write { db in
                guard let item = try Row.fetchOne(db, sql: "SELECT * FROM resubmissions WHERE id = ?", arguments: [id])
                else {
                    throw StoreError.notFound("resubmission \(id)")
                }
                let status = ResubmissionStatus(rawValue: item["status"]) ?? .queued
                guard [.dead, .unassigned, .cancelled].contains(status) || (status == .queued && targetHub != nil)
                else {
                    throw StoreError.conflict(
                        "resubmission \(id) is \(status.rawValue); only dead, unassigned or cancelled items are retried"
                    )
                }
                let target: String? = targetHub ?? (item["target_hub"] as String?)
                guard let target else {
                    throw StoreError.conflict("resubmission \(id) has no target hub; give targetHub")
                }
                let deploymentId: String = item["deployment_id"]
                guard self.topology.deployment(deploymentId)?.hub(target) != nil else {
                    throw StoreError.conflict("\(target) is not a hub of \(deploymentId)")
                }
                let at = Timestamp.format(now)
                try db.execute(
                    sql: """
                        UPDATE resubmissions SET status = 'queued', target_hub = ?, attempts = 0, available_at = ?,
                            lease_owner = NULL, lease_expires_at = NULL, updated_at = ? WHERE id = ?
                        """,
                    arguments: [target, at, at, id])
                try self.appendEvent(
                    "resubmission.retried", id: id, actor: actor, now: now, db: db,
                    extra: ["targetHub": .string(target), "previousStatus": .string(status.rawValue)])
                return try Self.resubmission(id: id, db: db, withSpec: false)!
            }
        }
    }

    public func cancel(id: String, actor: String, reason: String?, now: Date) async throws -> ResubmissionView {
        try await StoreError.mapping {
            try await database.pool.write { db in
                guard
                    let status = try String.fetchOne(
                        db, sql: "SELECT status FROM resubmissions WHERE id = ?", arguments: [id])
                else { throw StoreError.notFound("resubmission \(id)") }
                if status == "cancelled" { return try Self.resubmission(id: id, db: db, withSpec: false)! }
                guard status != "completed" else {
                    throw StoreError.conflict("resubmission \(id) is completed and cannot be cancelled")
                }
                try db.execute(
                    sql: """
                        UPDATE resubmissions SET status = 'cancelled', lease_owner = NULL, lease_expires_at = NULL,
                            updated_at = ? WHERE id = ?
                        """,
                    arguments: [Timestamp.format(now), id])
                try self.appendEvent(
                    "resubmission.cancelled", id: id, actor: actor, now: now, db: db,
                    extra: ["reason": .optional(reason), "previousStatus": .string(status)])
                return try Self.resubmission(id: id, db: db, withSpec: false)!
            }
        }
    }

    public func resubmissions(status: ResubmissionStatus?, page: PageRequest) async throws -> Page<ResubmissionView> {
        try await StoreError.mapping {
            try await database.pool.read { db in
                var filter = SQLFilter()
                filter.add("r.status = ?", status?.rawValue)
                return try page.fetch(
                    db, select: "r.*, j.external_id", from: "resubmissions r JOIN training_jobs j ON j.id = r.job_id",
                    filter: filter, ascending: true, seqColumn: "r.seq"
                ) { Self.resubmissionView($0, spec: nil) }
            }
        }
    }

    /// Returns expired leases to the queue (or to `dead` when their attempts are spent).
    @discardableResult
    public func reapExpiredLeases(now: Date) async throws -> Int {
        let expiredCount = try await StoreError.mapping {
            try await database.pool.read { db in
                try Int.fetchOne(
                    db, sql: "SELECT count(*) FROM resubmissions WHERE status = 'leased' AND lease_expires_at <= ?",
                    arguments: [Timestamp.format(now)]) ?? 0
            }
        }
        guard expiredCount > 0 else { return 0 }
        return try await StoreError.mapping {
            try await database.pool.write { db in try self.expireLeases(in: db, now: now) }
        }
    }

    // MARK: Helpers

    @discardableResult
    private func expireLeases(in db: Database, now: Date) throws -> Int {
        let expired = try Row.fetchAll(
            db, sql: "SELECT * FROM resubmissions WHERE status = 'leased' AND lease_expires_at <= ?",
            arguments: [Timestamp.format(now)])
        for item in expired {
            try appendEvent(
                "resubmission.lease_expired", id: item["id"], actor: "standby", now: now, db: db,
                extra: ["worker": .optional(item["lease_owner"])])
            try scheduleRetry(
                item, error: "lease expired while held by \(item["lease_owner"] as String? ?? "?")",
                random: random(), now: now, db: db, actor: "standby", immediate: true)
        }
        return expired.count
    }

    private func scheduleRetry(
        _ item: Row, error: String, random: Double, now: Date, db: Database, actor: String, immediate: Bool = false
    ) throws {
        let id: String = item["id"]
        let attempts: Int = item["attempts"]
        let maxAttempts: Int = item["max_attempts"]
        let at = Timestamp.format(now)
        if attempts >= maxAttempts {
            try db.execute(
                sql: """
                    UPDATE resubmissions SET status = 'dead', last_error = ?, lease_owner = NULL, lease_expires_at = NULL,
                        updated_at = ? WHERE id = ?
                    """,
                arguments: [error, at, id])
            try appendEvent(
                "resubmission.dead", id: id, actor: actor, now: now, db: db,
                extra: ["error": .string(error), "attempts": .number(Double(attempts))])
            return
        }
        let delay = immediate ? 0 : settings.backoff(afterAttempt: attempts, random: random)
        let available = Timestamp.format(now.addingTimeInterval(delay))
        try db.execute(
            sql: """
                UPDATE resubmissions SET status = 'queued', last_error = ?, available_at = ?, lease_owner = NULL,
                    lease_expires_at = NULL, updated_at = ? WHERE id = ?
                """,
            arguments: [error, available, at, id])
        try appendEvent(
            "resubmission.failed", id: id, actor: actor, now: now, db: db,
            extra: ["error": .string(error), "attempts": .number(Double(attempts)), "availableAt": .string(available)])
    }

    @discardableResult
    private func requireLease(id: String, worker: String, now: Date, db: Database) throws -> Row {
        guard let item = try Row.fetchOne(db, sql: "SELECT * FROM resubmissions WHERE id = ?", arguments: [id]) else {
            throw StoreError.notFound("resubmission \(id)")
        }
        let expires = (item["lease_expires_at"] as String?).flatMap(Timestamp.parse)
        guard item["status"] == "leased", item["lease_owner"] == worker, let expires, expires > now else {
            throw StoreError.conflict("worker \(worker) does not hold a live lease on resubmission \(id)")
        }
        return item
    }

    private func appendEvent(
        _ type: String, id: String, actor: String, now: Date, db: Database, extra: [String: JSONValue] = [:]
    ) throws {
        let row = try Row.fetchOne(
            db, sql: "SELECT deployment_id, target_hub, job_id FROM resubmissions WHERE id = ?", arguments: [id])
        var data = extra
        data["resubmissionId"] = .string(id)
        data["jobId"] = .optional(row?["job_id"])
        try self.database.chain.append(
            EventDraft(
                type: type, at: now, deploymentId: row?["deployment_id"], hub: row?["target_hub"], actor: actor,
                data: .object(data)),
            in: db)
    }

    static func jobRow(_ idOrExternalId: String, db: Database) throws -> Row? {
        try Row.fetchOne(
            db, sql: "SELECT * FROM training_jobs WHERE id = ? OR external_id = ? ORDER BY id = ? DESC LIMIT 1",
            arguments: [idOrExternalId, idOrExternalId, idOrExternalId])
    }

    static func job(id: String, db: Database) throws -> JobView? {
        try Row.fetchOne(db, sql: "SELECT * FROM training_jobs WHERE id = ?", arguments: [id]).map(jobView)
    }

    static func jobView(_ row: Row) -> JobView {
        JobView(
            id: row["id"], externalId: row["external_id"], deploymentId: row["deployment_id"], hub: row["hub_id"],
            spec: JSONValue.parse(row["spec"]) ?? .null, status: JobStatus(rawValue: row["status"]) ?? .running,
            priority: row["priority"], submittedAt: row["submitted_at"], interruptedBy: row["interrupted_by"],
            resubmittedFrom: row["resubmitted_from"], registeredBy: row["registered_by"], createdAt: row["created_at"],
            updatedAt: row["updated_at"])
    }

    static func resubmission(id: String, db: Database, withSpec: Bool) throws -> ResubmissionView? {
        guard
            let row = try Row.fetchOne(
                db,
                sql:
                    "SELECT r.*, j.external_id, j.spec FROM resubmissions r JOIN training_jobs j ON j.id = r.job_id WHERE r.id = ?",
                arguments: [id])
        else { return nil }
        return resubmissionView(row, spec: withSpec ? JSONValue.parse(row["spec"]) : nil)
    }

    static func resubmissionView(_ row: Row, spec: JSONValue?) -> ResubmissionView {
        ResubmissionView(
            id: row["id"], jobId: row["job_id"], externalId: row["external_id"],
            failoverEventId: row["failover_event_id"],
            deploymentId: row["deployment_id"], fromHub: row["from_hub"], targetHub: row["target_hub"],
            priority: row["priority"], status: ResubmissionStatus(rawValue: row["status"]) ?? .queued,
            attempts: row["attempts"], maxAttempts: row["max_attempts"], availableAt: row["available_at"],
            leaseOwner: row["lease_owner"], leaseExpiresAt: row["lease_expires_at"], lastError: row["last_error"],
            newJobId: row["new_job_id"], createdAt: row["created_at"], updatedAt: row["updated_at"], spec: spec)
    }
}
