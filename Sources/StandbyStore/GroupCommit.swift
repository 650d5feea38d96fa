import Foundation
import GRDB
import Metrics
import StandbyApp

/// Group commit on SQLite: concurrent writes share one transaction (see `GroupCommitQueue`), so
/// that `synchronous=FULL` (one fsync per commit) does not cap throughput at the disk's commit rate.
/// Writes also share the batch's `SharedUnitsOfWork` (the control plane's tracker state, saved
/// once per batch rather than once per write).
public final class GroupCommitWriter: Sendable {
    private let queue: GroupCommitQueue<WriteBatch>

    init(
        pool: DatabasePool, health: StorageHealth? = nil, maximumBatch: Int = 512,
        metricsFactory: (any MetricsFactory)? = nil,
        transaction: @escaping @Sendable (Database) -> SQLiteTransaction
    ) {
        let commitDuration = metricsFactory.map {
            Metrics.Timer(label: "standby_db_commit_duration_seconds", factory: $0)
        }
        let batchSize = metricsFactory.map { Recorder(label: "standby_db_commit_batch_size", factory: $0) }
        queue = GroupCommitQueue(
            label: "standby.group-commit", maximumBatch: maximumBatch, classify: StoreError.classify,
            observe: { outcome in
                batchSize?.record(outcome.size)
                commitDuration?.record(duration: outcome.duration)
                health?.record(outcome.unavailable.map(StorageHealth.Outcome.failure) ?? .success)
            },
            commit: { items, isolated in
                try StoreError.mapping {
                    try pool.write { db in
                        let batch = WriteBatch(db: db, transaction: transaction(db), isolated: isolated)
                        for item in items {
                            batch.beginWrite()
                            do {
                                try db.withinSavepoint { try item.run(batch) }
                            } catch {
                                batch.rollbackWrite()
                                item.record(error)
                            }
                        }
                        do {
                            try batch.flush()
                        } catch {
                            let classified = StoreError.classify(error)
                            if case StoreError.unavailable = classified { throw classified }
                            if isolated { throw classified }
                            throw GroupCommitRetryAlone()
                        }
                    }
                }
            })
    }

    /// Runs `work` inside a shared write transaction and returns once that transaction committed.
    /// The writes waiting for a transaction, by lane.
    public var waiting: (interactive: Int, bulk: Int) { queue.waiting }

    public func write<T: Sendable>(_ work: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await write { (batch: WriteBatch) in try work(batch.db) }
    }

    /// Like `write(_:)`, with access to what the batch's writes share. A `bulk` write of `weight`
    /// units of work (a part of a large report batch) joins a transaction only as far as the
    /// queue's bulk budget allows, behind every waiting interactive write.
    public func write<T: Sendable>(
        lane: WriteLane = .interactive, weight: Int = 1, _ work: @escaping @Sendable (WriteBatch) throws -> T
    ) async throws -> T {
        try await queue.write(lane: lane, weight: weight, work)
    }
}

/// One batch of the group-commit writer: its database connection (inside the shared transaction)
/// and the units of work its writes share. Confined to the writer's transaction, hence unchecked.
public final class WriteBatch: @unchecked Sendable {
    let db: Database
    let transaction: SQLiteTransaction
    public let units: SharedUnitsOfWork
    public var isolated: Bool { units.isolated }

    init(db: Database, transaction: SQLiteTransaction, isolated: Bool) {
        self.db = db
        self.transaction = transaction
        units = SharedUnitsOfWork(transaction: transaction, isolated: isolated)
    }

    func beginWrite() { units.beginUnit() }

    /// The write's savepoint was rolled back: what it changed in memory goes with it.
    func rollbackWrite() {
        transaction.chainHead.forget()
        units.undoUnit()
    }

    func flush() throws { try units.finish() }
}

extension Database {
    /// `inSavepoint(_:)` with its statements prepared once per connection rather than parsed on
    /// every call: each group-commit write runs in a savepoint, and parsing was a tenth of the
    /// writer's time. Outside a transaction it is GRDB's, which opens one instead.
    func withinSavepoint<T>(_ work: () throws -> T) throws -> T {
        guard isInsideTransaction else {
            var value: T?
            try inSavepoint {
                value = try work()
                return .commit
            }
            guard let value else { throw StoreError.unavailable("the savepoint ended without running its work") }
            return value
        }
        try cachedStatement(sql: "SAVEPOINT standby_write").execute()
        let value: T
        do {
            value = try work()
        } catch {
            // ROLLBACK TO leaves the savepoint open, RELEASE closes it. Both fail if SQLite already
            // rolled the whole transaction back (disk full): the commit then reports that.
            try? cachedStatement(sql: "ROLLBACK TO SAVEPOINT standby_write").execute()
            try? cachedStatement(sql: "RELEASE SAVEPOINT standby_write").execute()
            throw error
        }
        try cachedStatement(sql: "RELEASE SAVEPOINT standby_write").execute()
        return value
    }
}
