import Foundation
import GRDB
import Metrics
import Synchronization

/// Group commit: concurrent writes share one SQLite transaction, so that `synchronous=FULL`
/// (one fsync per commit) does not cap throughput at the disk's commit rate.
///
/// Each write runs in its own savepoint inside the shared transaction: one that throws is rolled
/// back alone and fails alone, its batch-mates commit. Every caller is resumed only after the
/// transaction holding its write has committed, so a 2xx still means "on disk".
public final class GroupCommitWriter: Sendable {
    private let pool: DatabasePool
    private let maximumBatch: Int
    private let state = Mutex(State())

    private struct State {
        var pending: [any PendingWrite] = []
        var draining = false
    }

    private let commitDuration: Metrics.Timer?
    private let batchSize: Recorder?

    init(pool: DatabasePool, maximumBatch: Int = 512, metricsFactory: (any MetricsFactory)? = nil) {
        self.pool = pool
        self.maximumBatch = maximumBatch
        commitDuration = metricsFactory.map { Metrics.Timer(label: "standby_db_commit_duration_seconds", factory: $0) }
        batchSize = metricsFactory.map { Recorder(label: "standby_db_commit_batch_size", factory: $0) }
    }

    /// Runs `work` inside a shared write transaction and returns once that transaction committed.
    public func write<T: Sendable>(_ work: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let item = Pending(work: work, continuation: continuation)
            let startDrain = state.withLock { state -> Bool in
                state.pending.append(item)
                guard !state.draining else { return false }
                state.draining = true
                return true
            }
            if startDrain {
                Task { await self.drain() }
            }
        }
    }

    private func drain() async {
        while true {
            let batch = state.withLock { state -> [any PendingWrite] in
                guard !state.pending.isEmpty else {
                    state.draining = false
                    return []
                }
                let count = min(maximumBatch, state.pending.count)
                let batch = Array(state.pending.prefix(count))
                state.pending.removeFirst(count)
                return batch
            }
            guard !batch.isEmpty else { return }
            let started = ContinuousClock.now
            batchSize?.record(batch.count)
            defer { commitDuration?.record(duration: ContinuousClock.now - started) }
            do {
                try await StoreError.mapping {
                    try await pool.write { db in
                        for item in batch {
                            do {
                                try db.inSavepoint {
                                    try item.run(db)
                                    return .commit
                                }
                            } catch {
                                item.record(error)
                            }
                        }
                    }
                }
                for item in batch { item.finish(commitError: nil) }
            } catch {
                for item in batch { item.finish(commitError: error) }
            }
        }
    }
}

private protocol PendingWrite: Sendable {
    /// Runs the work; its error, if any, is rethrown to roll back the savepoint.
    func run(_ db: Database) throws
    func record(_ error: any Error)
    func finish(commitError: (any Error)?)
}

private final class Pending<T: Sendable>: PendingWrite {
    let work: @Sendable (Database) throws -> T
    let continuation: CheckedContinuation<T, any Error>
    // Only touched by the draining task, one batch at a time.
    private let outcome = Mutex<Result<T, any Error>?>(nil)

    init(work: @escaping @Sendable (Database) throws -> T, continuation: CheckedContinuation<T, any Error>) {
        self.work = work
        self.continuation = continuation
    }

    func run(_ db: Database) throws {
        let value = try work(db)
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
