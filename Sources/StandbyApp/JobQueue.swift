import Foundation
import StandbyCore
import StandbyPrimitives

/// Training jobs and the leased resubmission queue. Every change is one unit of work; the store
/// serialises them (see `ControlStore`), which is what makes a claim atomic, so that no item is
/// handed to two workers.
public final class JobQueue: Sendable {
    let store: any ControlStore
    let topology: Topology
    public let settings: QueueSettings
    let ids: any IDSource
    let random: @Sendable () -> Double

    public init(
        store: any ControlStore, topology: Topology, settings: QueueSettings = QueueSettings(),
        ids: any IDSource = TimeOrderedIDSource(),
        random: @escaping @Sendable () -> Double = { Double.random(in: 0...1) }
    ) {
        self.store = store
        self.topology = topology
        self.settings = settings
        self.ids = ids
        self.random = random
    }

    // MARK: Jobs

    /// Registers a job; the same externalId with the same content again is a no-op (`created` false).
    public func register(_ job: JobRegistration, actor: String, now: Date) async throws -> (JobView, created: Bool) {
        try await store.write { transaction in
            let spec = job.spec.canonicalString()
            let specHash = Data(spec.utf8).sha256Hex
            if let existing = try transaction.job(externalId: job.externalId) {
                let same =
                    existing.hubId == job.hubId && existing.specSHA256 == specHash && existing.priority == job.priority
                    && existing.submittedAt == job.submittedAt.map(Timestamp.format)
                guard same else {
                    throw StoreError.conflict("job \(job.externalId) is already registered with different content")
                }
                return (try Self.view(existing.id, in: transaction), false)
            }
            let id = self.ids.next()
            let at = Timestamp.format(now)
            try transaction.insertJob(
                StoredJob(
                    id: id, externalId: job.externalId, deploymentId: job.deploymentId, hubId: job.hubId, spec: spec,
                    specSHA256: specHash, status: job.status, priority: job.priority,
                    submittedAt: job.submittedAt.map(Timestamp.format), interruptedBy: nil, resubmittedFrom: nil,
                    registeredBy: actor, createdAt: at, updatedAt: at))
            try transaction.append(
                EventDraft(
                    type: "job.registered", at: now, deploymentId: job.deploymentId, hub: job.hubId, actor: actor,
                    data: .object([
                        "jobId": .string(id), "externalId": .string(job.externalId),
                        "status": .string(job.status.rawValue),
                    ])))
            return (try Self.view(id, in: transaction), true)
        }
    }

    public func updateJob(idOrExternalId: String, to status: JobStatus, actor: String, now: Date) async throws
        -> JobView
    {
        try await store.write { transaction in
            guard var job = try transaction.job(idOrExternalId: idOrExternalId) else {
                throw StoreError.notFound("job \(idOrExternalId)")
            }
            let current = job.status
            if current == status { return try Self.view(job.id, in: transaction) }
            guard current.canMove(to: status) else {
                throw StoreError.conflict(
                    "job \(job.externalId) is \(current.rawValue); it cannot become \(status.rawValue)")
            }
            job.status = status
            job.updatedAt = Timestamp.format(now)
            try transaction.saveJob(job)
            try transaction.append(
                EventDraft(
                    type: "job.updated", at: now, deploymentId: job.deploymentId, hub: job.hubId, actor: actor,
                    data: .object([
                        "jobId": .string(job.id), "from": .string(current.rawValue), "to": .string(status.rawValue),
                    ])))
            return try Self.view(job.id, in: transaction)
        }
    }

    public func jobs(status: JobStatus?, hub: String?, page: PageRequest) async throws -> Page<JobView> {
        try await store.read { reads in try reads.jobs(status: status, hubId: hub, page: page) }
    }

    public func job(idOrExternalId: String) async throws -> JobView? {
        try await store.read { reads in
            guard let job = try reads.job(idOrExternalId: idOrExternalId) else { return nil }
            return try reads.jobView(id: job.id)
        }
    }

    // MARK: Interruption (inside the failover's unit of work)

    /// Marks every job running on the failed hubs interrupted and queues one resubmission per
    /// (job, failover event). Replaying the same event queues nothing new.
    static func interrupt(
        for plan: FailoverPlan, in transaction: any ControlTransaction, ids: any IDSource, now: Date,
        maxAttempts: Int, events: inout [EventDraft]
    ) throws {
        guard !plan.dryRun, !plan.interruptedHubs.isEmpty else { return }
        let at = Timestamp.format(now)
        for hub in plan.interruptedHubs {
            for var job in try transaction.runningJobs(hubId: hub) {
                job.status = .interrupted
                job.interruptedBy = plan.id
                job.updatedAt = at
                try transaction.saveJob(job)
                let status: ResubmissionStatus = plan.resubmitTo == nil ? .unassigned : .queued
                let resubmission = StoredResubmission(
                    id: ids.next(), jobId: job.id, failoverEventId: plan.id, deploymentId: plan.deploymentId,
                    fromHub: hub, targetHub: plan.resubmitTo, priority: job.priority, status: status, attempts: 0,
                    maxAttempts: maxAttempts, availableAt: at, leaseOwner: nil, leaseExpiresAt: nil, lastError: nil,
                    newJobId: nil, createdAt: at, updatedAt: at)
                let queued = try transaction.insertResubmission(resubmission)
                events.append(
                    EventDraft(
                        type: "job.interrupted", at: now, deploymentId: plan.deploymentId, hub: hub, actor: "standby",
                        data: .object([
                            "jobId": .string(job.id), "externalId": .string(job.externalId),
                            "failoverEventId": .string(plan.id),
                        ])))
                if queued {
                    events.append(
                        EventDraft(
                            type: "resubmission.queued", at: now, deploymentId: plan.deploymentId,
                            hub: plan.resubmitTo, actor: "standby",
                            data: .object([
                                "resubmissionId": .string(resubmission.id), "jobId": .string(job.id),
                                "targetHub": .optional(plan.resubmitTo), "status": .string(status.rawValue),
                            ])))
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
    /// unit of work: when the answer cannot be built, the leases are rolled back with it, so a
    /// worker never holds items it was never told about.
    public func claim<Response: Sendable>(
        worker: String, limit: Int, leaseSeconds: TimeInterval, now: Date,
        respond: @escaping @Sendable ([ResubmissionView]) throws -> Response
    ) async throws -> Response {
        try await store.write { transaction in
            try self.expireLeases(in: transaction, now: now)
            let at = Timestamp.format(now)
            let expires = Timestamp.format(now.addingTimeInterval(leaseSeconds))
            var claimed: [String] = []
            for var item in try transaction.availableResubmissions(now: now, limit: limit) {
                item.status = .leased
                item.leaseOwner = worker
                item.leaseExpiresAt = expires
                item.attempts += 1
                item.updatedAt = at
                try transaction.saveResubmission(item)
                try self.appendEvent(
                    "resubmission.claimed", item, actor: worker, now: now, in: transaction,
                    extra: ["worker": .string(worker), "leaseExpiresAt": .string(expires)])
                claimed.append(item.id)
            }
            return try respond(try claimed.map { try Self.view(resubmission: $0, withSpec: true, in: transaction) })
        }
    }

    public func heartbeat(id: String, worker: String, leaseSeconds: TimeInterval, now: Date) async throws
        -> ResubmissionView
    {
        try await store.write { transaction in
            var item = try self.requireLease(id: id, worker: worker, now: now, in: transaction)
            item.leaseExpiresAt = Timestamp.format(now.addingTimeInterval(leaseSeconds))
            item.updatedAt = Timestamp.format(now)
            try transaction.saveResubmission(item)
            return try Self.view(resubmission: id, withSpec: false, in: transaction)
        }
    }

    /// Completes an item and records the job the worker started in the surviving hub.
    public func complete(id: String, worker: String, newExternalId: String, now: Date) async throws -> ResubmissionView
    {
        try await store.write { transaction in
            var item = try self.requireLease(id: id, worker: worker, now: now, in: transaction)
            let at = Timestamp.format(now)
            guard let targetHub = item.targetHub, let original = try transaction.job(id: item.jobId)
            else { throw StoreError.conflict("resubmission \(id) has no target hub or no job") }
            let newJobId: String
            if var existing = try transaction.job(externalId: newExternalId) {
                guard existing.hubId == targetHub else {
                    throw StoreError.conflict("job \(newExternalId) is registered on another hub than \(targetHub)")
                }
                newJobId = existing.id
                existing.resubmittedFrom = original.id
                existing.updatedAt = at
                try transaction.saveJob(existing)
            } else {
                newJobId = self.ids.next()
                try transaction.insertJob(
                    StoredJob(
                        id: newJobId, externalId: newExternalId, deploymentId: original.deploymentId,
                        hubId: targetHub, spec: original.spec, specSHA256: original.specSHA256, status: .running,
                        priority: original.priority, submittedAt: at, interruptedBy: nil,
                        resubmittedFrom: original.id, registeredBy: worker, createdAt: at, updatedAt: at))
            }
            item.status = .completed
            item.newJobId = newJobId
            item.leaseOwner = nil
            item.leaseExpiresAt = nil
            item.updatedAt = at
            try transaction.saveResubmission(item)
            try self.appendEvent(
                "resubmission.completed", item, actor: worker, now: now, in: transaction,
                extra: ["newJobId": .string(newJobId), "newExternalId": .string(newExternalId)])
            return try Self.view(resubmission: id, withSpec: false, in: transaction)
        }
    }

    /// A worker could not resubmit: retry later with backoff, or give up after `maxAttempts`.
    public func fail(id: String, worker: String, error: String, now: Date) async throws -> ResubmissionView {
        let random = self.random()
        return try await store.write { transaction in
            let item = try self.requireLease(id: id, worker: worker, now: now, in: transaction)
            try self.scheduleRetry(item, error: error, random: random, now: now, in: transaction, actor: worker)
            return try Self.view(resubmission: id, withSpec: false, in: transaction)
        }
    }

    /// Operator: revive a dead (or unassigned, or cancelled) item, optionally aimed at another hub.
    public func retry(id: String, targetHub: String?, actor: String, now: Date) async throws -> ResubmissionView {
        try await store.write { transaction in
            guard var item = try transaction.resubmission(id: id) else {
                throw StoreError.notFound("resubmission \(id)")
            }
            let status = item.status
            guard [.dead, .unassigned, .cancelled].contains(status) || (status == .queued && targetHub != nil) else {
                throw StoreError.conflict(
                    "resubmission \(id) is \(status.rawValue); only dead, unassigned or cancelled items are retried")
            }
            guard let target = targetHub ?? item.targetHub else {
                throw StoreError.conflict("resubmission \(id) has no target hub; give targetHub")
            }
            guard self.topology.deployment(item.deploymentId)?.hub(target) != nil else {
                throw StoreError.conflict("\(target) is not a hub of \(item.deploymentId)")
            }
            let at = Timestamp.format(now)
            item.status = .queued
            item.targetHub = target
            item.attempts = 0
            item.availableAt = at
            item.leaseOwner = nil
            item.leaseExpiresAt = nil
            item.updatedAt = at
            try transaction.saveResubmission(item)
            try self.appendEvent(
                "resubmission.retried", item, actor: actor, now: now, in: transaction,
                extra: ["targetHub": .string(target), "previousStatus": .string(status.rawValue)])
            return try Self.view(resubmission: id, withSpec: false, in: transaction)
        }
    }

    public func cancel(id: String, actor: String, reason: String?, now: Date) async throws -> ResubmissionView {
        try await store.write { transaction in
            guard var item = try transaction.resubmission(id: id) else {
                throw StoreError.notFound("resubmission \(id)")
            }
            let previous = item.status
            if previous == .cancelled { return try Self.view(resubmission: id, withSpec: false, in: transaction) }
            guard previous != .completed else {
                throw StoreError.conflict("resubmission \(id) is completed and cannot be cancelled")
            }
            item.status = .cancelled
            item.leaseOwner = nil
            item.leaseExpiresAt = nil
            item.updatedAt = Timestamp.format(now)
            try transaction.saveResubmission(item)
            try self.appendEvent(
                "resubmission.cancelled", item, actor: actor, now: now, in: transaction,
                extra: ["reason": .optional(reason), "previousStatus": .string(previous.rawValue)])
            return try Self.view(resubmission: id, withSpec: false, in: transaction)
        }
    }

    public func resubmissions(status: ResubmissionStatus?, page: PageRequest) async throws -> Page<ResubmissionView> {
        try await store.read { reads in try reads.resubmissions(status: status, page: page) }
    }

    /// Returns expired leases to the queue (or to `dead` when their attempts are spent).
    @discardableResult
    public func reapExpiredLeases(now: Date) async throws -> Int {
        let expiredCount = try await store.read { reads in try reads.expiredLeaseCount(now: now) }
        guard expiredCount > 0 else { return 0 }
        return try await store.write { transaction in try self.expireLeases(in: transaction, now: now) }
    }

    // MARK: Helpers

    @discardableResult
    private func expireLeases(in transaction: any ControlTransaction, now: Date) throws -> Int {
        let expired = try transaction.expiredLeases(now: now)
        for item in expired {
            try appendEvent(
                "resubmission.lease_expired", item, actor: "standby", now: now, in: transaction,
                extra: ["worker": .optional(item.leaseOwner)])
            try scheduleRetry(
                item, error: "lease expired while held by \(item.leaseOwner ?? "?")", random: random(), now: now,
                in: transaction, actor: "standby", immediate: true)
        }
        return expired.count
    }

    private func scheduleRetry(
        _ item: StoredResubmission, error: String, random: Double, now: Date, in transaction: any ControlTransaction,
        actor: String, immediate: Bool = false
    ) throws {
        var item = item
        let at = Timestamp.format(now)
        item.lastError = error
        item.leaseOwner = nil
        item.leaseExpiresAt = nil
        item.updatedAt = at
        if item.attempts >= item.maxAttempts {
            item.status = .dead
            try transaction.saveResubmission(item)
            try appendEvent(
                "resubmission.dead", item, actor: actor, now: now, in: transaction,
                extra: ["error": .string(error), "attempts": .number(Double(item.attempts))])
            return
        }
        let delay = immediate ? 0 : settings.backoff(afterAttempt: item.attempts, random: random)
        let available = Timestamp.format(now.addingTimeInterval(delay))
        item.status = .queued
        item.availableAt = available
        try transaction.saveResubmission(item)
        try appendEvent(
            "resubmission.failed", item, actor: actor, now: now, in: transaction,
            extra: [
                "error": .string(error), "attempts": .number(Double(item.attempts)), "availableAt": .string(available),
            ])
    }

    private func requireLease(id: String, worker: String, now: Date, in transaction: any ControlTransaction) throws
        -> StoredResubmission
    {
        guard let item = try transaction.resubmission(id: id) else {
            throw StoreError.notFound("resubmission \(id)")
        }
        guard item.status == .leased, item.leaseOwner == worker,
            let expires = item.leaseExpiresAt.flatMap(Timestamp.parse), expires > now
        else {
            throw StoreError.conflict("worker \(worker) does not hold a live lease on resubmission \(id)")
        }
        return item
    }

    private func appendEvent(
        _ type: String, _ item: StoredResubmission, actor: String, now: Date, in transaction: any ControlTransaction,
        extra: [String: JSONValue] = [:]
    ) throws {
        var data = extra
        data["resubmissionId"] = .string(item.id)
        data["jobId"] = .string(item.jobId)
        try transaction.append(
            EventDraft(
                type: type, at: now, deploymentId: item.deploymentId, hub: item.targetHub, actor: actor,
                data: .object(data)))
    }

    private static func view(_ jobId: String, in reads: any ControlReads) throws -> JobView {
        guard let view = try reads.jobView(id: jobId) else { throw StoreError.notFound("job \(jobId)") }
        return view
    }

    private static func view(resubmission id: String, withSpec: Bool, in reads: any ControlReads) throws
        -> ResubmissionView
    {
        guard let view = try reads.resubmissionView(id: id, withSpec: withSpec) else {
            throw StoreError.notFound("resubmission \(id)")
        }
        return view
    }
}
