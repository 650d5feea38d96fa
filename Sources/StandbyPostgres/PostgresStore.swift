import Foundation
import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import StandbyApp
import StandbyCore
import StandbyPrimitives
import Synchronization

/// The control plane's storage on a PostgreSQL database that several instances share.
///
/// Units of work run on this store's own threads, each in a transaction on a connection to the
/// writable primary (see `PostgresConnector`), blocking on the driver. A transaction that lost a
/// race to another instance (serialization failure, deadlock, a unique key inserted first) is run
/// again. Shared writes are batched per instance (`GroupCommitQueue`), at most
/// `maximumBatch` savepoints per transaction: PostgreSQL slows sharply past 64 subtransactions.
/// A 2xx still means committed: `synchronous_commit` is left on, so with a synchronous standby
/// configured it also means replicated.
public final class PostgresStore: ControlStore, Sendable {
    public let settings: PostgresSettings
    public let chain: EventChain
    let connector: PostgresConnector
    let logger: Logger
    private let threads: NIOThreadPool
    private let groupCommit: GroupCommitQueue<SharedUnitsOfWork>
    private let lockWaits = LockWaits()
    /// What the latest writes said of the database, for readiness.
    public let storageHealth = StorageHealth()
    /// A statement that has not answered by then is abandoned and its connection closed (a
    /// server that stopped answering, a partition): the write is a 503, never a hang.
    let queryTimeout: TimeAmount

    /// How many times a transaction that lost a race is run again before its error stands.
    static let raceRetries = 5
    /// Savepoints per shared transaction at most.
    static let maximumBatch = 32

    public init(
        settings: PostgresSettings, chainKey: Secret? = nil, queryTimeout: Duration = .seconds(10),
        logger: Logger = Logger(label: "standby.postgres")
    ) throws {
        self.settings = settings
        self.logger = logger
        chain = EventChain(key: chainKey)
        self.queryTimeout = .nanoseconds(Int64(queryTimeout.components.seconds) * 1_000_000_000)
        connector = try PostgresConnector(settings: settings, logger: logger)
        threads = NIOThreadPool(numberOfThreads: settings.poolSize)
        threads.start()
        let health = storageHealth
        let box = WeakStore()
        let lockWaits = lockWaits
        groupCommit = GroupCommitQueue(
            label: "standby.postgres.group-commit", maximumBatch: Self.maximumBatch,
            classify: PostgresErrors.classify,
            observe: { outcome in health.record(outcome.unavailable.map(StorageHealth.Outcome.failure) ?? .success) },
            gatherFor: { lockWaits.gathering },
            commit: { items, isolated in
                guard let store = box.store else { throw StoreError.unavailable("the store is shut down") }
                try store.commitShared(items, isolated: isolated)
            })
        box.store = self
    }

    /// Closes every connection and stops the store's threads.
    public func shutdown() {
        try? threads.syncShutdownGracefully()
        connector.shutdown()
    }

    // MARK: Running transactions

    /// Runs `body` in one transaction on this thread, blocking; runs it again when it lost a race.
    func transaction<T>(
        readOnly: Bool = false, deferringWrites: Bool = false, _ body: (PostgresTransaction) throws -> T
    ) throws -> T {
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try connector.withConnection { pooled in
                    try runTransaction(on: pooled, readOnly: readOnly, deferringWrites: deferringWrites, body)
                }
            } catch  where attempt < Self.raceRetries && PostgresErrors.isRetryable(error) {
                continue
            }
        }
    }

    private func runTransaction<T>(
        on pooled: PostgresConnector.Pooled, readOnly: Bool, deferringWrites: Bool,
        _ body: (PostgresTransaction) throws -> T
    ) throws -> T {
        let transaction = PostgresTransaction(
            connection: pooled.connection, statements: pooled.statements, logger: logger, chain: chain,
            readOnly: readOnly, timeout: queryTimeout, deferringWrites: deferringWrites)
        try transaction.begin()
        do {
            let value = try body(transaction)
            if !transaction.committed { try transaction.commit() }
            return value
        } catch {
            transaction.rollback()
            throw error
        }
    }

    /// Runs `body` on one of the store's threads.
    private func onStoreThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        do {
            return try await threads.runIfActive(body)
        } catch let error as NIOThreadPoolError.ThreadPoolInactive {
            throw StoreError.unavailable("the store is shut down (\(error))")
        }
    }

    private func recordingHealth<T>(_ body: () async throws -> T) async throws -> T {
        do {
            let value = try await body()
            storageHealth.record(.success)
            return value
        } catch let error as StoreError {
            if case .unavailable(let reason) = error { storageHealth.record(.failure(reason)) }
            throw error
        }
    }

    // MARK: ControlStore

    public func write<T: Sendable>(_ work: @escaping @Sendable (any ControlTransaction) throws -> T) async throws -> T {
        try await recordingHealth {
            try await onStoreThread { try self.transaction { try work($0) } }
        }
    }

    public func sharedWrite<T: Sendable>(
        lane: WriteLane, weight: Int, readAhead: ReadAhead,
        _ work: @escaping @Sendable (SharedUnitsOfWork) throws -> T
    ) async throws -> T {
        try await groupCommit.write(lane: lane, weight: weight, readAhead: readAhead, work)
    }

    /// The shared writes waiting for a transaction (not those of the batch being committed).
    public var waitingWrites: Int {
        let waiting = groupCommit.waiting
        return waiting.interactive + waiting.bulk
    }

    /// One shared transaction of the group-commit queue: each item in a savepoint, the shared
    /// work finished once, then the events chained and the transaction committed. A batch defers
    /// its ingest writes to send them as multi-row statements (see `PostgresTransaction`); a write
    /// run alone sends each statement as it comes, so that any failure is its own.
    func commitShared(_ items: [any GroupCommitItem<SharedUnitsOfWork>], isolated: Bool) throws {
        try transaction(deferringWrites: !isolated) { transaction in
            let units = SharedUnitsOfWork(transaction: transaction, isolated: isolated)
            do {
                try transaction.readAhead(ReadAhead.merging(items.map(\.readAhead)))
            } catch {
                if isolated || PostgresErrors.isRetryable(error) { throw error }
                if case StoreError.unavailable = PostgresErrors.classify(error) { throw error }
                throw GroupCommitRetryAlone()
            }
            for item in items {
                units.beginUnit()
                do {
                    try transaction.inSavepoint { try item.run(units) }
                } catch {
                    units.undoUnit()
                    // A lost race is resolved by running again: alone, the whole transaction
                    // is retried; shared, each item runs alone.
                    if PostgresErrors.isRetryable(error) {
                        if isolated { throw error }
                        throw GroupCommitRetryAlone()
                    }
                    if case StoreError.unavailable = PostgresErrors.classify(error) { throw error }
                    item.record(error)
                }
            }
            do {
                try units.finish()
                // A statement failed where only the whole transaction could undo it: what the
                // units recorded of it cannot be trusted.
                if transaction.poisoned && !isolated { throw GroupCommitRetryAlone() }
                // Committed here, so that a failure of the statements still in flight is
                // classified like the units' own.
                try transaction.commit()
                if let waited = transaction.lockWait { lockWaits.record(waited) }
            } catch let retry as GroupCommitRetryAlone {
                throw retry
            } catch {
                let classified = PostgresErrors.classify(error)
                if case StoreError.unavailable = classified { throw classified }
                if isolated || PostgresErrors.isRetryable(error) { throw error }
                throw GroupCommitRetryAlone()
            }
        }
    }

    public func read<T: Sendable>(_ work: @escaping @Sendable (any ControlReads) throws -> T) async throws -> T {
        try await onStoreThread { try self.transaction(readOnly: true) { try work($0) } }
    }

    /// Readiness: the latest write's outcome while it is fresh, else a probe write.
    public func checkReady(now: Date) async throws {
        if let known = storageHealth.recent() {
            if case .failure(let reason) = known { throw StoreError.unavailable(reason) }
            return
        }
        try await recordingHealth {
            try await onStoreThread {
                try self.transaction { transaction in
                    try transaction.requireCurrentSchema(known: PostgresMigrations.embedded.map(\.name))
                    try transaction.recordReadinessProbe(at: now)
                }
            }
        }
    }

    public func cluster(seenFrom instance: InstanceIdentity, now: Date) async throws -> ClusterView {
        let host = connector.primaryHost?.description ?? settings.hosts.map(\.description).joined(separator: ",")
        let (instances, lease) = try await onStoreThread {
            try self.transaction(readOnly: true) { transaction in
                (try transaction.instances(), try transaction.leaderLease())
            }
        }
        let leaderId = lease.flatMap { lease in (lease.expiresAt ?? .distantFuture) > now ? lease.holder : nil }
        return ClusterView(
            backend: .postgres,
            instances: instances.map { stored in
                var item = stored
                item.leader = stored.id == leaderId
                return item
            },
            leader: lease.map {
                ClusterView.Leader(instance: $0.holder, epoch: $0.epoch, expiresAt: $0.expiresAt.map(Timestamp.format))
            },
            database: ClusterView.Database(host: host, role: "primary"))
    }

    public func heartbeat(_ instance: InstanceIdentity, leaseTTL: TimeInterval, now: Date) async throws -> LeaderLease {
        try await recordingHealth {
            try await onStoreThread {
                try self.transaction { transaction in
                    try transaction.registerInstance(instance)
                    return try transaction.takeOrRenewLeaderLease(holder: instance.id, ttl: leaseTTL)
                }
            }
        }
    }

    // MARK: Schema

    /// Applies the embedded migrations not yet applied, under an advisory lock so that instances
    /// starting at once migrate one after the other. Refuses a database a newer build migrated.
    /// Returns the names applied now.
    @discardableResult
    public func migrate() async throws -> [String] {
        try await onStoreThread {
            try self.transaction { transaction in try transaction.migrate(PostgresMigrations.embedded) }
        }
    }

    public func appliedMigrations() async throws -> [String] {
        try await onStoreThread {
            try self.transaction(readOnly: true) { transaction in try transaction.appliedMigrations() }
        }
    }

    /// Records `name` as applied without running anything: how a database a newer build migrated
    /// looks to this one (for tests of the refusal).
    public func recordForeignMigration(_ name: String) async throws {
        _ = try await withTransaction { transaction in
            try transaction.execute("INSERT INTO schema_migrations (name) VALUES (\(name))")
        }
    }

    /// Runs `body` in a transaction of its own, on a store thread (the history's writes).
    func withTransaction<T: Sendable>(
        readOnly: Bool = false, _ body: @escaping @Sendable (PostgresTransaction) throws -> T
    ) async throws -> T {
        try await onStoreThread { try self.transaction(readOnly: readOnly, body) }
    }
}

/// The group-commit queue's way back to its store, which owns it (no reference cycle).
private final class WeakStore: @unchecked Sendable {
    weak var store: PostgresStore?
}

/// A numbered file of `migrations/postgres/`, carried inside the binary.
public struct PostgresMigration: Sendable, Hashable {
    public let name: String
    public let sql: String

    /// The file's statements: each ends with a semicolon at the end of a line, outside a
    /// dollar-quoted body (a function's, which has statements of its own).
    var statements: [String] {
        var pieces: [String] = []
        var insideBody = false
        for piece in sql.components(separatedBy: ";\n") {
            if insideBody { pieces[pieces.count - 1] += ";\n" + piece } else { pieces.append(piece) }
            // Each `$tag$` opens or closes a body.
            if piece.matches(of: /\$[A-Za-z_]*\$/).count % 2 == 1 { insideBody.toggle() }
        }
        return pieces.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
            .map { $0.hasSuffix(";") ? String($0.dropLast()) : $0 }
            .filter { statement in
                statement.split(separator: "\n").contains { !$0.trimmingCharacters(in: .whitespaces).hasPrefix("--") }
            }
    }
}

public enum PostgresMigrations {
    public static var all: [PostgresMigration] { embedded }
}

/// How long this instance's recent batches waited for their deployments' locks, and so how long
/// the next batch may gather writes before it starts: while other instances take turns on the
/// same deployment, a batch that starts at once only waits on the server, and one that gathers
/// for part of that wait carries more deliveries per turn. The wait it measures shrinks as it
/// gathers (it asks later in the others' turns), so it gathers for up to twice the recent wait:
/// about two thirds of the wait it would have had. Uncontended locks (a wait under a
/// millisecond) gather nothing, so a quiet instance answers at once.
public final class LockWaits: Sendable {
    /// A moving average of the waits, in nanoseconds.
    private let average = Mutex<Double>(0)
    /// The longest a batch gathers, however contended the locks.
    public static let maximumGathering = Duration.milliseconds(16)
    /// A recent wait below this gathers nothing.
    public static let contended = Duration.milliseconds(1)

    public init() {}

    public func record(_ wait: Duration) {
        let nanoseconds = Double(wait.components.seconds) * 1e9 + Double(wait.components.attoseconds) / 1e9
        average.withLock { $0 = $0 * 0.75 + nanoseconds * 0.25 }
    }

    public var gathering: Duration {
        let recent = Duration.nanoseconds(Int64(average.withLock { $0 }))
        guard recent >= Self.contended else { return .zero }
        return min(recent * 2, Self.maximumGathering)
    }
}
