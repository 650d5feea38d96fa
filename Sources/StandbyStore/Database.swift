import Foundation
import GRDB
import Metrics
import StandbyApp
import StandbyCore
import StandbyPrimitives
import Synchronization

/// How hard SQLite works to keep a commit across a power cut. `full` is the default: a 2xx
/// promises that the delivery is on disk.
public enum SynchronousMode: String, Sendable, CaseIterable {
    case off
    case normal
    case full
    case extra
}

public struct DatabaseSettings: Sendable, Hashable {
    public var path: String
    public var synchronous: SynchronousMode
    public var busyTimeout: TimeInterval

    public init(path: String, synchronous: SynchronousMode = .full, busyTimeout: TimeInterval = 5) {
        self.path = path
        self.synchronous = synchronous
        self.busyTimeout = busyTimeout
    }
}

/// The one `DatabasePool` of the process (WAL: readers never block the writer).
public final class StandbyDatabase: Sendable {
    public let pool: DatabasePool
    public let settings: DatabaseSettings
    /// The path for writes that arrive concurrently from many requests (webhooks, reports).
    public let groupCommit: GroupCommitWriter
    /// What the latest writes said of the storage, for readiness.
    public let storageHealth: StorageHealth
    /// How the history this process appends is chained (keyed with `audit.chainKey` or not).
    public let chain: EventChain
    /// Decoded hub states of this process, trusted while their stored revision matches.
    let hubStates = HubStateCache()

    /// Opens (creating if needed) the database file and its folder. Does not migrate.
    public init(settings: DatabaseSettings, chainKey: Secret? = nil, metricsFactory: (any MetricsFactory)? = nil) throws
    {
        self.settings = settings
        chain = EventChain(key: chainKey)
        let folder = URL(fileURLWithPath: settings.path).deletingLastPathComponent()
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        var configuration = Configuration()
        configuration.busyMode = .timeout(settings.busyTimeout)
        configuration.foreignKeysEnabled = true
        configuration.label = "standby"
        pool = try StoreError.mapping { try DatabasePool(path: settings.path, configuration: configuration) }
        let health = StorageHealth()
        storageHealth = health
        let chain = chain
        let hubStates = hubStates
        groupCommit = GroupCommitWriter(pool: pool, health: health, metricsFactory: metricsFactory) { db in
            SQLiteTransaction(db: db, chain: chain, hubStates: hubStates)
        }
        // GRDB switches the writer to synchronous=NORMAL when it enables WAL, after any
        // prepareDatabase hook; set the configured level on the writer connection afterwards.
        let synchronous = settings.synchronous.rawValue.uppercased()
        try StoreError.mapping {
            try pool.barrierWriteWithoutTransaction { db in
                try db.execute(sql: "PRAGMA synchronous = \(synchronous)")
                // Savepoint journals (one savepoint per group-commit write) stay in memory.
                try db.execute(sql: "PRAGMA temp_store = MEMORY")
            }
        }
    }

    /// Applies every embedded migration not yet applied. Refuses a database that a newer build wrote.
    public func migrate() throws {
        let migrator = Migrations.migrator()
        try refuseNewerSchema(migrator)
        try StoreError.mapping { try migrator.migrate(pool) }
    }

    /// Names of the migrations applied to this file, in order.
    public func appliedMigrations() throws -> [String] {
        try pool.read { db in try Migrations.migrator().appliedIdentifiers(db).sorted() }
    }

    /// Readiness, cheap enough for an unauthenticated probe: the outcome of the latest write
    /// (any commit or storage failure of the group-commit path, or the probe's own) is reused while
    /// it is younger than `StorageHealth.freshness`; only an older one costs a probe write.
    public func checkReady(now: Date) async throws {
        if let known = storageHealth.recent() {
            if case .failure(let reason) = known { throw StoreError.unavailable(reason) }
            return
        }
        do {
            try await probeWrite(now: now)
            storageHealth.record(.success)
        } catch let error as StoreError {
            if case .unavailable(let reason) = error { storageHealth.record(.failure(reason)) }
            throw error
        }
    }

    /// The schema is current and a write transaction commits.
    private func probeWrite(now: Date) async throws {
        let migrator = Migrations.migrator()
        let complete = try await StoreError.mapping {
            try await pool.read { db in try migrator.hasCompletedMigrations(db) }
        }
        guard complete else { throw StoreError.unavailable("migrations are not applied") }
        try await StoreError.mapping {
            try await pool.write { db in
                try db.execute(
                    sql: "INSERT INTO readiness (id, checked_at) VALUES (1, ?) "
                        + "ON CONFLICT(id) DO UPDATE SET checked_at = excluded.checked_at",
                    arguments: [Timestamp.format(now)])
            }
        }
    }

    private func refuseNewerSchema(_ migrator: DatabaseMigrator) throws {
        let (superseded, applied) = try StoreError.mapping {
            try pool.read { db in
                (try migrator.hasBeenSuperseded(db), try migrator.appliedIdentifiers(db))
            }
        }
        if superseded {
            let known = Set(Migrations.all.map(\.name))
            throw StoreError.newerSchema(unknownMigrations: applied.filter { !known.contains($0) }.sorted())
        }
    }
}
