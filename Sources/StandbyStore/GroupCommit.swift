import Foundation
import GRDB
import Metrics
import StandbyApp
import Synchronization

/// Group commit: concurrent writes share one SQLite transaction, so that `synchronous=FULL`
/// (one fsync per commit) does not cap throughput at the disk's commit rate.
///
/// Each write runs in its own savepoint inside the shared transaction: one that throws is rolled
/// back alone and fails alone, its batch-mates commit. Writes also share the batch's
/// `SharedUnitsOfWork` (the control plane's tracker state, saved once per batch rather than once
/// per write); if finishing that shared work fails, the batch is run again one write per
/// transaction, so a bad write still fails alone. Every caller is resumed only after the transaction holding its
/// write has committed, so a 2xx still means "on disk".
public final class GroupCommitWriter: Sendable {
    private let pool: DatabasePool
    private let maximumBatch: Int
    private let state = Mutex(State())
    /// The writer loop runs here, off the cooperative pool: it blocks on SQLite, and a hop back to a
    /// busy cooperative thread between batches would leave the single writer idle.
    private let writerQueue = DispatchQueue(label: "standby.group-commit")

    private struct State {
        var interactive: [any PendingWrite] = []
        var bulk: [any PendingWrite] = []
        var draining = false
    }

    /// Bulk writes (the parts of large report batches) share a transaction up to this much work,
    /// counted in the weight their callers give; interactive writes are never held back by them.
    let maximumBulkWeight: Int

    private let commitDuration: Metrics.Timer?
    private let batchSize: Recorder?

    private let health: StorageHealth?
    /// The transaction each batch's units of work see.
    private let transaction: @Sendable (Database) -> SQLiteTransaction

    init(
        pool: DatabasePool, health: StorageHealth? = nil, maximumBatch: Int = 512,
        metricsFactory: (any MetricsFactory)? = nil,
        transaction: @escaping @Sendable (Database) -> SQLiteTransaction
    ) {
        self.pool = pool
        self.transaction = transaction
        self.health = health
        maximumBulkWeight = 128
        self.maximumBatch = maximumBatch
        commitDuration = metricsFactory.map { Metrics.Timer(label: "standby_db_commit_duration_seconds", factory: $0) }
        batchSize = metricsFactory.map { Recorder(label: "standby_db_commit_batch_size", factory: $0) }
    }

    /// Runs `work` inside a shared write transaction and returns once that transaction committed.
    public func write<T: Sendable>(_ work: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await write { (batch: WriteBatch) in try work(batch.db) }
    }

    /// Like `write(_:)`, with access to what the batch's writes share. A `bulk` write of `weight`
    /// units of work (a part of a large report batch) joins a transaction only as far as
    /// `maximumBulkWeight` allows, behind every waiting interactive write (a webhook delivery, a
    /// single report), so one large write never stalls the rest.
    public func write<T: Sendable>(
        lane: WriteLane = .interactive, weight: Int = 1, _ work: @escaping @Sendable (WriteBatch) throws -> T
    ) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let item = Pending(work: work, weight: max(1, weight), continuation: continuation)
            let startDrain = state.withLock { state -> Bool in
                switch lane {
                case .interactive: state.interactive.append(item)
                case .bulk: state.bulk.append(item)
                }
                guard !state.draining else { return false }
                state.draining = true
                return true
            }
            if startDrain {
                writerQueue.async { self.drain() }
            }
        }
    }

    private func drain() {
        while true {
            let batch = state.withLock { state -> [any PendingWrite] in
                guard !state.interactive.isEmpty || !state.bulk.isEmpty else {
                    state.draining = false
                    return []
                }
                let count = min(maximumBatch, state.interactive.count)
                var batch = Array(state.interactive.prefix(count))
                state.interactive.removeFirst(count)
                // At least one bulk write per transaction, so that bulk work is never starved,
                // then more while they fit the weight budget.
                var weight = 0
                while let next = state.bulk.first, batch.count < maximumBatch,
                    weight == 0 || weight + next.weight <= maximumBulkWeight
                {
                    weight += next.weight
                    batch.append(state.bulk.removeFirst())
                }
                return batch
            }
            guard !batch.isEmpty else { return }
            let started = ContinuousClock.now
            batchSize?.record(batch.count)
            defer { commitDuration?.record(duration: ContinuousClock.now - started) }
            do {
                try commit(batch, isolated: batch.count == 1)
                health?.record(.success)
                for item in batch { item.finish(commitError: nil) }
            } catch is SharedWorkFailure {
                // The batch's shared work failed: find the write that caused it by giving each its own transaction.
                for item in batch {
                    do {
                        try commit([item], isolated: true)
                        item.finish(commitError: nil)
                    } catch {
                        item.finish(commitError: StoreError.classify(error))
                    }
                }
            } catch {
                if case StoreError.unavailable(let reason) = error { health?.record(.failure(reason)) }
                for item in batch { item.finish(commitError: error) }
            }
        }
    }

    private func commit(_ items: [any PendingWrite], isolated: Bool) throws {
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
                    throw SharedWorkFailure()
                }
            }
        }
    }
}

/// The batch's shared work failed; each write is then run again alone, where its own error is reported.
private struct SharedWorkFailure: Error {}

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

private protocol PendingWrite: Sendable {
    var weight: Int { get }
    /// Runs the work; its error, if any, is rethrown to roll back the savepoint.
    func run(_ batch: WriteBatch) throws
    func record(_ error: any Error)
    func finish(commitError: (any Error)?)
}

private final class Pending<T: Sendable>: PendingWrite {
    let work: @Sendable (WriteBatch) throws -> T
    let weight: Int
    let continuation: CheckedContinuation<T, any Error>
    // Only touched by the draining task, one batch at a time. A write may run twice (see
    // `SharedWorkFailure`): the last run's outcome is the one reported.
    private let outcome = Mutex<Result<T, any Error>?>(nil)

    init(
        work: @escaping @Sendable (WriteBatch) throws -> T, weight: Int, continuation: CheckedContinuation<T, any Error>
    ) {
        self.work = work
        self.weight = weight
        self.continuation = continuation
    }

    func run(_ batch: WriteBatch) throws {
        let value = try work(batch)
        outcome.withLock { $0 = .success(value) }
    }

    func record(_ error: any Error) {
        outcome.withLock { $0 = .failure(StoreError.classify(error)) }
    }

    func finish(commitError: (any Error)?) {
        if let commitError {
            continuation.resume(throwing: commitError)
            return
        }
        switch outcome.withLock({ $0 }) {
        case .success(let value): continuation.resume(returning: value)
        case .failure(let error): continuation.resume(throwing: error)
        case nil: continuation.resume(throwing: StoreError.unavailable("the write did not run"))
        }
    }
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
