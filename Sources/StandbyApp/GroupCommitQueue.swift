import Foundation
import Synchronization

/// Group commit, whatever the store: concurrent writes wait in a queue and a writer loop, on a
/// thread of its own, commits them in shared transactions. Each write runs in its own savepoint
/// inside the transaction (the store's `commit` sees to that): one that throws is rolled back and
/// fails alone while its batch-mates commit. If the batch's shared work fails, the store throws
/// `GroupCommitRetryAlone`, and every write of the batch runs again in a transaction of its own,
/// so that a failure stays the failing write's. Every caller is resumed only after the
/// transaction holding its write committed, so a 2xx still means "committed".
///
/// Interactive writes (webhook deliveries, single reports) go first in every batch; bulk writes
/// (parts of large report batches) join a transaction only up to `maximumBulkWeight` of work, at
/// least one per transaction so that they are never starved.
///
/// A store whose transactions wait their turn for a lock another process holds (several
/// instances deciding on one deployment) says how long a batch may gather writes before it starts
/// (`gatherFor`): the turn would have been waited for anyway, and a bigger batch makes fewer turns.
///
/// Under steady load the callers a batch answers write again at once (a webhook sender's next
/// delivery on the same connection), a little after the writer is free. The first of them would
/// start a transaction alone, and the others would wait for that whole commit: every other
/// transaction would carry one write. So after a batch of several, the next one waits for as many
/// writes as that batch had, for at most a share of its duration (`refillShare`, `maximumRefill`):
/// a lone writer, or one after a quiet spell, still starts at once.
public final class GroupCommitQueue<Batch>: Sendable {
    public typealias Commit = @Sendable (_ items: [any GroupCommitItem<Batch>], _ isolated: Bool) throws -> Void

    private let maximumBatch: Int
    private let maximumBulkWeight: Int
    private let commit: Commit
    private let observe: @Sendable (Outcome) -> Void
    private let classify: @Sendable (any Error) -> any Error
    private let gatherFor: @Sendable () -> Duration
    private let state = Mutex(State())
    /// Signalled when a write arrives while the writer gathers (`State.gathering`).
    private let arrivals = NSCondition()
    /// The writer loop runs here, off the cooperative pool: it blocks on the database, and a hop
    /// back to a busy cooperative thread between batches would leave the writer idle.
    private let writerQueue: DispatchQueue

    /// What one batch came to, for metrics and readiness.
    public struct Outcome: Sendable {
        public var size: Int
        public var duration: Duration
        /// The storage trouble that failed the whole batch, if any.
        public var unavailable: String?
    }

    private struct State {
        var interactive: [any GroupCommitItem<Batch>] = []
        var bulk: [any GroupCommitItem<Batch>] = []
        var draining = false
        /// The writer waits until this many writes are queued (nil: it does not wait).
        var gathering: Int?
        /// The latest batch, for the next one to wait for its callers' next writes.
        var lastBatch: (size: Int, duration: Duration, ended: ContinuousClock.Instant)?

        /// Writes waiting in either lane.
        var queued: Int { interactive.count + bulk.count }
    }

    /// How long the batch after one of several waits for as many writes again: a share of that
    /// batch's duration (the time its callers waited for a commit anyway), and never long.
    static var refillShare: Double { 0.5 }
    public static var defaultMaximumRefill: Duration { .milliseconds(2) }
    private let maximumRefill: Duration

    /// `commit` runs `items` in one transaction (one savepoint each, `run` then, on failure,
    /// `record`); `classify` turns a driver's error into the port's (`StoreError.unavailable` for
    /// storage trouble); `observe` hears of every batch; `gatherFor` is how long the next batch
    /// waits for more writes before it starts (zero: it starts at once); `maximumRefill` bounds
    /// how long a batch waits for the writes of the one before's callers.
    public init(
        label: String, maximumBatch: Int, maximumBulkWeight: Int = 128, maximumRefill: Duration = defaultMaximumRefill,
        classify: @escaping @Sendable (any Error) -> any Error,
        observe: @escaping @Sendable (Outcome) -> Void = { _ in },
        gatherFor: @escaping @Sendable () -> Duration = { .zero },
        commit: @escaping Commit
    ) {
        self.gatherFor = gatherFor
        self.maximumRefill = maximumRefill
        self.maximumBatch = maximumBatch
        self.maximumBulkWeight = maximumBulkWeight
        self.classify = classify
        self.observe = observe
        self.commit = commit
        writerQueue = DispatchQueue(label: label)
    }

    /// The writes waiting for a transaction, by lane (not those of the batch being committed).
    public var waiting: (interactive: Int, bulk: Int) {
        state.withLock { ($0.interactive.count, $0.bulk.count) }
    }

    /// Runs `work` inside a shared write transaction and returns once that transaction committed.
    /// `readAhead` travels with the write for the store's `commit` to read ahead for the batch.
    public func write<T: Sendable>(
        lane: WriteLane = .interactive, weight: Int = 1, readAhead: ReadAhead = .nothing,
        _ work: @escaping @Sendable (Batch) throws -> T
    ) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let item = PendingWrite<Batch, T>(
                work: work, weight: max(1, weight), readAhead: readAhead, classify: classify,
                continuation: continuation)
            let (startDrain, gathered) = state.withLock { state -> (Bool, Bool) in
                switch lane {
                case .interactive: state.interactive.append(item)
                case .bulk: state.bulk.append(item)
                }
                let gathered = state.gathering.map { state.queued >= $0 } ?? false
                guard !state.draining else { return (false, gathered) }
                state.draining = true
                return (true, gathered)
            }
            if startDrain {
                writerQueue.async { self.drain() }
            } else if gathered {
                arrivals.lock()
                arrivals.signal()
                arrivals.unlock()
            }
        }
    }

    private func nextBatch() -> [any GroupCommitItem<Batch>] {
        state.withLock { state in
            guard !state.interactive.isEmpty || !state.bulk.isEmpty else {
                state.draining = false
                return []
            }
            let count = min(maximumBatch, state.interactive.count)
            var batch = Array(state.interactive.prefix(count))
            state.interactive.removeFirst(count)
            var weight = 0
            while let next = state.bulk.first, batch.count < maximumBatch,
                weight == 0 || weight + next.weight <= maximumBulkWeight
            {
                weight += next.weight
                batch.append(state.bulk.removeFirst())
            }
            return batch
        }
    }

    /// How many writes the next batch waits for, and until when (nil: it starts at once): as many
    /// as a batch holds while other instances hold the locks (`gatherFor`), and as many as the
    /// latest batch had, shortly after it (see `refillShare`).
    private func gathering(now: ContinuousClock.Instant) -> (writes: Int, until: ContinuousClock.Instant)? {
        var plan: (writes: Int, until: ContinuousClock.Instant)?
        let lockTurn = gatherFor()
        if lockTurn > .zero { plan = (maximumBatch, now + lockTurn) }
        if let last = state.withLock({ $0.lastBatch }), last.size > 1 {
            let until = last.ended + min(last.duration * Self.refillShare, maximumRefill)
            if until > now {
                plan = (max(plan?.writes ?? 0, last.size), max(plan?.until ?? until, until))
            }
        }
        return plan
    }

    /// Waits until `writes` are queued or `until` passed; each write that arrives meanwhile checks.
    private func gather(_ writes: Int, until: ContinuousClock.Instant) {
        arrivals.lock()
        defer { arrivals.unlock() }
        // Set while `arrivals` is held: a write that arrives after a count below is signalled.
        state.withLock { $0.gathering = writes }
        while state.withLock({ $0.queued }) < writes {
            let left = until - ContinuousClock.now
            guard left > .zero else { break }
            let (seconds, attoseconds) = left.components
            _ = arrivals.wait(until: Date(timeIntervalSinceNow: Double(seconds) + Double(attoseconds) / 1e18))
        }
        state.withLock { $0.gathering = nil }
    }

    private func drain() {
        while true {
            if let plan = gathering(now: .now) { gather(plan.writes, until: plan.until) }
            let batch = nextBatch()
            guard !batch.isEmpty else { return }
            let started = ContinuousClock.now
            // The batch's outcome is observed before any caller is resumed: a caller that got its
            // 2xx and asks for readiness at once must find the storage's state that answer implied.
            func observed(unavailable: String? = nil) {
                let ended = ContinuousClock.now
                state.withLock { $0.lastBatch = (batch.count, ended - started, ended) }
                observe(Outcome(size: batch.count, duration: ended - started, unavailable: unavailable))
            }
            do {
                try commit(batch, batch.count == 1)
                observed()
                for item in batch { item.finish(commitError: nil) }
            } catch is GroupCommitRetryAlone {
                // The batch's shared work failed: find the write that caused it by giving each its own transaction.
                var results: [(any GroupCommitItem<Batch>, (any Error)?)] = []
                var unavailable: String?
                for item in batch {
                    do {
                        try commit([item], true)
                        results.append((item, nil))
                    } catch {
                        let error = classify(error)
                        if case StoreError.unavailable(let reason) = error { unavailable = reason }
                        results.append((item, error))
                    }
                }
                // The storage is down only if nothing committed; a write that committed says it is up.
                observed(unavailable: results.contains { $0.1 == nil } ? nil : unavailable)
                for (item, error) in results { item.finish(commitError: error) }
            } catch {
                let error = classify(error)
                var unavailable: String?
                if case StoreError.unavailable(let reason) = error { unavailable = reason }
                observed(unavailable: unavailable)
                for item in batch { item.finish(commitError: error) }
            }
        }
    }
}

/// Thrown by a store's `commit` when the batch's shared work failed (or a write lost a race the
/// store resolves by running it again): every write of the batch then runs alone.
public struct GroupCommitRetryAlone: Error {
    public init() {}
}

/// One write waiting in a `GroupCommitQueue`.
public protocol GroupCommitItem<Batch>: Sendable {
    associatedtype Batch
    var weight: Int { get }
    /// The rows the work will read, for the store to fetch for the whole batch first.
    var readAhead: ReadAhead { get }
    /// Runs the work; its error, if any, is rethrown for the store to roll back the savepoint.
    func run(_ batch: Batch) throws
    /// The work threw `error` (and its savepoint was rolled back).
    func record(_ error: any Error)
    func finish(commitError: (any Error)?)
}

private final class PendingWrite<Batch, T: Sendable>: GroupCommitItem {
    let work: @Sendable (Batch) throws -> T
    let weight: Int
    let readAhead: ReadAhead
    let classify: @Sendable (any Error) -> any Error
    let continuation: CheckedContinuation<T, any Error>
    // Only touched by the writer loop, one batch at a time. A write may run twice (see
    // `GroupCommitRetryAlone`): the last run's outcome is the one reported.
    private let outcome = Mutex<Result<T, any Error>?>(nil)

    init(
        work: @escaping @Sendable (Batch) throws -> T, weight: Int, readAhead: ReadAhead,
        classify: @escaping @Sendable (any Error) -> any Error,
        continuation: CheckedContinuation<T, any Error>
    ) {
        self.work = work
        self.weight = weight
        self.readAhead = readAhead
        self.classify = classify
        self.continuation = continuation
    }

    func run(_ batch: Batch) throws {
        let value = try work(batch)
        outcome.withLock { $0 = .success(value) }
    }

    func record(_ error: any Error) {
        outcome.withLock { $0 = .failure(classify(error)) }
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
