import Foundation
import GRDB
import StandbyApp
import StandbyPrimitives

// The `training_jobs` table: a training job is a record of it.

extension StoredJob: FetchableRecord, PersistableRecord {
    public static let databaseTableName = "training_jobs"

    public enum Columns {
        public static let id = Column("id")
        public static let externalId = Column("external_id")
        public static let deploymentId = Column("deployment_id")
        public static let hubId = Column("hub_id")
        public static let spec = Column("spec")
        public static let specSHA256 = Column("spec_sha256")
        public static let status = Column("status")
        public static let priority = Column("priority")
        public static let submittedAt = Column("submitted_at")
        public static let interruptedBy = Column("interrupted_by")
        public static let resubmittedFrom = Column("resubmitted_from")
        public static let registeredBy = Column("registered_by")
        public static let createdAt = Column("created_at")
        public static let updatedAt = Column("updated_at")
        public static let seq = Column("seq")
    }

    public init(row: Row) throws {
        self.init(
            id: row[Columns.id], externalId: row[Columns.externalId], deploymentId: row[Columns.deploymentId],
            hubId: row[Columns.hubId], spec: row[Columns.spec], specSHA256: row[Columns.specSHA256],
            status: JobStatus(rawValue: row[Columns.status]) ?? .running, priority: row[Columns.priority],
            submittedAt: row[Columns.submittedAt], interruptedBy: row[Columns.interruptedBy],
            resubmittedFrom: row[Columns.resubmittedFrom], registeredBy: row[Columns.registeredBy],
            createdAt: row[Columns.createdAt], updatedAt: row[Columns.updatedAt])
    }

    public func encode(to container: inout PersistenceContainer) throws {
        container[Columns.id] = id
        container[Columns.externalId] = externalId
        container[Columns.deploymentId] = deploymentId
        container[Columns.hubId] = hubId
        container[Columns.spec] = spec
        container[Columns.specSHA256] = specSHA256
        container[Columns.status] = status.rawValue
        container[Columns.priority] = priority
        container[Columns.submittedAt] = submittedAt
        container[Columns.interruptedBy] = interruptedBy
        container[Columns.resubmittedFrom] = resubmittedFrom
        container[Columns.registeredBy] = registeredBy
        container[Columns.createdAt] = createdAt
        container[Columns.updatedAt] = updatedAt
    }
}

enum TrainingJobsTable {
    static func job(id: String, in db: Database) throws -> StoredJob? {
        try StoredJob.filter(StoredJob.Columns.id == id).fetchOne(db)
    }

    static func job(externalId: String, in db: Database) throws -> StoredJob? {
        try StoredJob.filter(StoredJob.Columns.externalId == externalId).fetchOne(db)
    }

    static func running(onHub hubId: String, in db: Database) throws -> [StoredJob] {
        try StoredJob.filter(StoredJob.Columns.hubId == hubId && StoredJob.Columns.status == JobStatus.running.rawValue)
            .order(StoredJob.Columns.seq).fetchAll(db)
    }

    static func insert(_ job: StoredJob, in db: Database) throws {
        try job.insert(db)
    }

    static func save(_ job: StoredJob, in db: Database) throws {
        try StoredJob.filter(StoredJob.Columns.id == job.id).updateAll(
            db,
            StoredJob.Columns.status.set(to: job.status.rawValue),
            StoredJob.Columns.interruptedBy.set(to: job.interruptedBy),
            StoredJob.Columns.resubmittedFrom.set(to: job.resubmittedFrom),
            StoredJob.Columns.updatedAt.set(to: job.updatedAt))
    }

    static func page(status: JobStatus?, hubId: String?, page: PageRequest, in db: Database) throws -> Page<JobView> {
        var filter = SQLFilter()
        filter.add("status = ?", status?.rawValue)
        filter.add("hub_id = ?", hubId)
        return try page.fetch(db, from: "training_jobs", filter: filter, ascending: false) {
            try StoredJob(row: $0).view
        }
    }
}
