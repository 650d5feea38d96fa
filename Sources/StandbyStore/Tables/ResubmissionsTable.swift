import Foundation
import GRDB
import StandbyApp
import StandbyPrimitives

// The `resubmissions` table: the leased queue of interrupted jobs, one record per item.

extension StoredResubmission: FetchableRecord, PersistableRecord {
    public static let databaseTableName = "resubmissions"

    public enum Columns {
        public static let id = Column("id")
        public static let jobId = Column("job_id")
        public static let failoverEventId = Column("failover_event_id")
        public static let deploymentId = Column("deployment_id")
        public static let fromHub = Column("from_hub")
        public static let targetHub = Column("target_hub")
        public static let priority = Column("priority")
        public static let status = Column("status")
        public static let attempts = Column("attempts")
        public static let maxAttempts = Column("max_attempts")
        public static let availableAt = Column("available_at")
        public static let leaseOwner = Column("lease_owner")
        public static let leaseExpiresAt = Column("lease_expires_at")
        public static let lastError = Column("last_error")
        public static let newJobId = Column("new_job_id")
        public static let createdAt = Column("created_at")
        public static let updatedAt = Column("updated_at")
        public static let seq = Column("seq")
    }

    public init(row: Row) throws {
        self.init(
            id: row[Columns.id], jobId: row[Columns.jobId], failoverEventId: row[Columns.failoverEventId],
            deploymentId: row[Columns.deploymentId], fromHub: row[Columns.fromHub], targetHub: row[Columns.targetHub],
            priority: row[Columns.priority], status: ResubmissionStatus(rawValue: row[Columns.status]) ?? .queued,
            attempts: row[Columns.attempts], maxAttempts: row[Columns.maxAttempts],
            availableAt: row[Columns.availableAt], leaseOwner: row[Columns.leaseOwner],
            leaseExpiresAt: row[Columns.leaseExpiresAt], lastError: row[Columns.lastError],
            newJobId: row[Columns.newJobId], createdAt: row[Columns.createdAt], updatedAt: row[Columns.updatedAt])
    }

    public func encode(to container: inout PersistenceContainer) throws {
        container[Columns.id] = id
        container[Columns.jobId] = jobId
        container[Columns.failoverEventId] = failoverEventId
        container[Columns.deploymentId] = deploymentId
        container[Columns.fromHub] = fromHub
        container[Columns.targetHub] = targetHub
        container[Columns.priority] = priority
        container[Columns.status] = status.rawValue
        container[Columns.attempts] = attempts
        container[Columns.maxAttempts] = maxAttempts
        container[Columns.availableAt] = availableAt
        container[Columns.leaseOwner] = leaseOwner
        container[Columns.leaseExpiresAt] = leaseExpiresAt
        container[Columns.lastError] = lastError
        container[Columns.newJobId] = newJobId
        container[Columns.createdAt] = createdAt
        container[Columns.updatedAt] = updatedAt
    }
}

enum ResubmissionsTable {
    static func resubmission(id: String, in db: Database) throws -> StoredResubmission? {
        try StoredResubmission.filter(StoredResubmission.Columns.id == id).fetchOne(db)
    }

    /// Queues `resubmission` unless (job, failover event) has one; true when queued.
    static func insert(_ resubmission: StoredResubmission, in db: Database) throws -> Bool {
        try resubmission.insert(db, onConflict: .ignore)
        return db.changesCount > 0
    }

    static func save(_ resubmission: StoredResubmission, in db: Database) throws {
        typealias Columns = StoredResubmission.Columns
        try StoredResubmission.filter(Columns.id == resubmission.id).updateAll(
            db,
            Columns.targetHub.set(to: resubmission.targetHub),
            Columns.status.set(to: resubmission.status.rawValue),
            Columns.attempts.set(to: resubmission.attempts),
            Columns.availableAt.set(to: resubmission.availableAt),
            Columns.leaseOwner.set(to: resubmission.leaseOwner),
            Columns.leaseExpiresAt.set(to: resubmission.leaseExpiresAt),
            Columns.lastError.set(to: resubmission.lastError),
            Columns.newJobId.set(to: resubmission.newJobId),
            Columns.updatedAt.set(to: resubmission.updatedAt))
    }

    static func available(now: Date, limit: Int, in db: Database) throws -> [StoredResubmission] {
        try StoredResubmission.fetchAll(
            db,
            sql: """
                SELECT * FROM resubmissions
                WHERE status = 'queued' AND available_at <= ? AND target_hub IS NOT NULL
                ORDER BY priority DESC, seq ASC LIMIT ?
                """,
            arguments: [Timestamp.format(now), limit])
    }

    static func expiredLeases(now: Date, in db: Database) throws -> [StoredResubmission] {
        try StoredResubmission.fetchAll(
            db, sql: "SELECT * FROM resubmissions WHERE status = 'leased' AND lease_expires_at <= ?",
            arguments: [Timestamp.format(now)])
    }

    static func expiredLeaseCount(now: Date, in db: Database) throws -> Int {
        try Int.fetchOne(
            db, sql: "SELECT count(*) FROM resubmissions WHERE status = 'leased' AND lease_expires_at <= ?",
            arguments: [Timestamp.format(now)]) ?? 0
    }

    static func view(id: String, withSpec: Bool, in db: Database) throws -> ResubmissionView? {
        guard
            let row = try Row.fetchOne(
                db,
                sql:
                    "SELECT r.*, j.external_id, j.spec FROM resubmissions r JOIN training_jobs j ON j.id = r.job_id WHERE r.id = ?",
                arguments: [id])
        else { return nil }
        return try view(row, spec: withSpec ? JSONValue.parse(row["spec"]) : nil)
    }

    static func page(status: ResubmissionStatus?, page: PageRequest, in db: Database) throws -> Page<ResubmissionView> {
        var filter = SQLFilter()
        filter.add("r.status = ?", status?.rawValue)
        return try page.fetch(
            db, select: "r.*, j.external_id", from: "resubmissions r JOIN training_jobs j ON j.id = r.job_id",
            filter: filter, ascending: true, seqColumn: "r.seq"
        ) { try view($0, spec: nil) }
    }

    static func countsByStatus(in db: Database) throws -> [String: Int] {
        Dictionary(
            uniqueKeysWithValues: try Row.fetchAll(
                db, sql: "SELECT status, count(*) AS n FROM resubmissions GROUP BY 1"
            )
            .map { ($0["status"] as String, $0["n"] as Int) })
    }

    private static func view(_ row: Row, spec: JSONValue?) throws -> ResubmissionView {
        try StoredResubmission(row: row).view(externalId: row["external_id"], spec: spec)
    }
}
