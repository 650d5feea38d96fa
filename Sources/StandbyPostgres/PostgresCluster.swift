import Foundation
import PostgresNIO
import StandbyApp
import StandbyPrimitives

// The tables several instances share beyond the control plane's: the schema history, the
// instances, the leader lease and the readiness probe's row.

extension PostgresTransaction {
    /// An arbitrary constant of this application for the migration lock (instances starting at
    /// once migrate one after the other).
    private static let migrationLockKey = 7_311_524_017

    func migrate(_ migrations: [PostgresMigration]) throws -> [String] {
        try execute("SELECT pg_advisory_xact_lock(\(Self.migrationLockKey))")
        try execute(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                name TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())
            """)
        let applied = Set(try appliedMigrations())
        let known = Set(migrations.map(\.name))
        let unknown = applied.subtracting(known)
        if !unknown.isEmpty { throw StoreError.newerSchema(unknownMigrations: unknown.sorted()) }
        var now: [String] = []
        for migration in migrations where !applied.contains(migration.name) {
            for statement in migration.statements {
                try execute(PostgresQuery(unsafeSQL: statement))
            }
            try execute("INSERT INTO schema_migrations (name) VALUES (\(migration.name))")
            now.append(migration.name)
        }
        return now
    }

    func appliedMigrations() throws -> [String] {
        let exists =
            try rows("SELECT to_regclass('schema_migrations') IS NOT NULL AS present").first?["present"] ?? false
        guard exists else { return [] }
        return try rows("SELECT name FROM schema_migrations ORDER BY name").map { try $0["name"] }
    }

    /// Throws `.unavailable` unless every migration this build knows is applied.
    func requireCurrentSchema(known: [String]) throws {
        let applied = Set(try appliedMigrations())
        let missing = known.filter { !applied.contains($0) }
        if !missing.isEmpty {
            throw StoreError.unavailable("migrations are not applied: \(missing.joined(separator: ", "))")
        }
    }

    func recordReadinessProbe(at now: Date) throws {
        try execute(
            """
            INSERT INTO readiness (id, checked_at) VALUES (1, \(Timestamp.format(now)))
            ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at
            """)
    }

    /// An instance not seen for this long is forgotten: `/v1/cluster` lists those that may still
    /// come back, not every host that ever ran.
    static let forgetInstancesAfter: TimeInterval = 86_400

    func registerInstance(_ instance: InstanceIdentity) throws {
        try execute(
            "DELETE FROM instances WHERE last_seen_at < now() - make_interval(secs => \(Self.forgetInstancesAfter))")
        try execute(
            """
            INSERT INTO instances (id, region, url, version, started_at, last_seen_at)
            VALUES (\(instance.id), \(instance.region), \(instance.url), \(instance.version),
                    \(Timestamp.format(instance.startedAt)), now())
            ON CONFLICT (id) DO UPDATE SET region = excluded.region, url = excluded.url, version = excluded.version,
                started_at = excluded.started_at, last_seen_at = now()
            """)
    }

    /// Takes the lease when it is free or lapsed (the epoch goes up by one), renews it when this
    /// holder still has it (same epoch); returns the lease as it stands. Expiry is the database's
    /// clock, so the instances' clocks need not agree.
    func takeOrRenewLeaderLease(holder: String, ttl: TimeInterval) throws -> LeaderLease {
        let taken = try rows(
            """
            INSERT INTO leases (name, holder, epoch, expires_at)
            VALUES ('leader', \(holder), 1, now() + make_interval(secs => \(ttl)))
            ON CONFLICT (name) DO UPDATE SET
                epoch = CASE WHEN leases.holder = excluded.holder AND leases.expires_at > now()
                             THEN leases.epoch ELSE leases.epoch + 1 END,
                holder = excluded.holder, expires_at = excluded.expires_at
            WHERE leases.holder = excluded.holder OR leases.expires_at <= now()
            RETURNING holder, epoch, extract(epoch FROM expires_at)::float8 AS expires
            """)
        if let row = taken.first { return try Self.lease(row) }
        guard let current = try leaderLease() else {
            throw StoreError.unavailable("the leader lease could not be read")
        }
        return current
    }

    func leaderLease() throws -> LeaderLease? {
        try rows(
            "SELECT holder, epoch, extract(epoch FROM expires_at)::float8 AS expires FROM leases WHERE name = 'leader'"
        ).first.map(Self.lease)
    }

    private static func lease(_ row: PGRow) throws -> LeaderLease {
        LeaderLease(
            holder: try row["holder"], epoch: try row["epoch"],
            expiresAt: Date(timeIntervalSince1970: try row["expires"]))
    }

    /// Every registered instance, the most recently seen first (`leader` is filled in by the caller).
    func instances() throws -> [ClusterView.Instance] {
        try rows(
            """
            SELECT id, region, url, version, started_at, extract(epoch FROM last_seen_at)::float8 AS last_seen
            FROM instances ORDER BY last_seen_at DESC, id
            """
        ).map {
            ClusterView.Instance(
                id: try $0["id"], region: try $0["region"], url: try $0["url"], version: try $0["version"],
                startedAt: try $0["started_at"],
                lastSeenAt: Timestamp.format(Date(timeIntervalSince1970: try $0["last_seen"])), leader: false)
        }
    }
}
