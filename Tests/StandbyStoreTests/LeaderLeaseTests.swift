import Foundation
import StandbyApp
import StandbyCore
import StandbyPostgres
import StandbyPrimitives
import StandbyTestSupport
import Testing

@Suite("The leader lease on PostgreSQL")
struct LeaderLeaseTests {
    func instance(_ id: String) -> InstanceIdentity {
        InstanceIdentity(id: id, region: nil, url: nil, startedAt: Date())
    }

    @Test(
        "a lapsed lease changes hands with a higher epoch; the former holder's guarded write is refused and writes nothing"
    )
    func formerLeaderIsFenced() async throws {
        let settings = try await PostgresTestServer.freshDatabase()
        let first = try PostgresStore(settings: settings)
        let second = try PostgresStore(settings: settings)
        defer {
            first.shutdown()
            second.shutdown()
        }
        try await first.migrate()
        // A lease long enough that a loaded machine cannot let it lapse between these calls...
        let taken = try await first.heartbeat(instance("a"), leaseTTL: 30, now: Date())
        #expect(taken.holder == "a")
        // While it holds, another cannot take it, and a renewal keeps the epoch...
        #expect(try await second.heartbeat(instance("b"), leaseTTL: 30, now: Date()).holder == "a")
        // ...this last renewal shortening it to one second.
        #expect(try await first.heartbeat(instance("a"), leaseTTL: 1, now: Date()).epoch == taken.epoch)
        // "a" stops renewing (paused, cut off) but still believes it leads.
        let believes = Leadership(instanceId: "a")
        believes.update(taken, sentAt: .now, ttl: .seconds(60))
        try await Task.sleep(for: .milliseconds(1300))
        let takeover = try await second.heartbeat(instance("b"), leaseTTL: 30, now: Date())
        #expect(takeover.holder == "b")
        #expect(takeover.epoch == taken.epoch + 1)
        let fenced = LeaderFencedStore(base: first, leadership: believes)
        let report = HealthReportInput(
            id: "r-fenced", deploymentId: "prod", hubId: "east", source: "probe", outcome: .failure,
            observedAt: Date(), latencyMs: nil, statusCode: nil, detail: nil)
        await #expect(throws: StoreError.self) {
            try await fenced.write { transaction in
                try transaction.storeReport(report, receivedAt: Date(), actor: "former-leader")
            }
        }
        #expect(believes.currentEpoch == nil)
        // Nothing of the refused unit was written: the report is new to the store.
        let stored = try await second.write { transaction in
            try transaction.storeReport(report, receivedAt: Date(), actor: "test")
        }
        #expect(stored == "r-fenced")
        let view = try await second.cluster(seenFrom: instance("b"), now: Date())
        #expect(view.leader?.instance == "b")
        #expect(view.instances.first { $0.id == "b" }?.leader == true)
    }

    @Test("several instances migrating at once: each sees the schema once, applied by one of them")
    func concurrentMigrations() async throws {
        let settings = try await PostgresTestServer.freshDatabase()
        let stores = try (0..<3).map { _ in try PostgresStore(settings: settings) }
        defer { for store in stores { store.shutdown() } }
        let applied = try await withThrowingTaskGroup(of: [String].self) { group in
            for store in stores { group.addTask { try await store.migrate() } }
            return try await group.reduce(into: [[String]]()) { $0.append($1) }
        }
        #expect(applied.filter { !$0.isEmpty }.count == 1)
        #expect(try await stores[0].appliedMigrations() == PostgresMigrations.all.map(\.name))
    }

    @Test("a database migrated by a newer build is refused")
    func newerSchemaRefused() async throws {
        let settings = try await PostgresTestServer.freshDatabase()
        let store = try PostgresStore(settings: settings)
        defer { store.shutdown() }
        try await store.migrate()
        try await store.recordForeignMigration("9999_from_the_future")
        await #expect(throws: StoreError.self) { try await store.migrate() }
    }

    @Test("the embedded PostgreSQL migrations are the files in migrations/postgres")
    func embeddedMigrationsMatchFiles() throws {
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("migrations/postgres")
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".sql") }
            .sorted()
        #expect(files.map { String($0.dropLast(4)) } == PostgresMigrations.all.map(\.name))
        for (file, migration) in zip(files, PostgresMigrations.all) {
            let text = try String(contentsOf: folder.appendingPathComponent(file), encoding: .utf8)
            let normalised = text.split(separator: "\n", omittingEmptySubsequences: false)
                .map { $0.replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression) }
                .joined(separator: "\n").trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(normalised == migration.sql.trimmingCharacters(in: .whitespacesAndNewlines), "\(file)")
        }
    }
}

@Suite("database.url")
struct PostgresURLTests {
    @Test("a host list with ports, the password decoded, sslmode and its CA file")
    func parsesHostList() throws {
        let settings = try PostgresSettings.parse(
            url: "postgres://standby:p%40ss@db1.example.net:5433,db2.example.net,[::1]:6432/standby"
                + "?sslmode=verify-full&sslrootcert=/etc/standby/ca.pem&connect_timeout=3")
        #expect(
            settings.hosts == [
                .init(name: "db1.example.net", port: 5433), .init(name: "db2.example.net", port: 5432),
                .init(name: "::1", port: 6432),
            ])
        #expect(settings.username == "standby")
        #expect(settings.password?.value == "p@ss")
        #expect(settings.database == "standby")
        #expect(settings.tls == .verifyFull)
        #expect(settings.caFile == "/etc/standby/ca.pem")
        #expect(settings.connectTimeout == 3)
        #expect(!settings.redactedURL.contains("p@ss"))
    }

    @Test(
        "what cannot be used is refused with the reason",
        arguments: [
            "mysql://u@h/db", "postgres://h/db", "postgres://u@h", "postgres://u@h:99999/db",
            "postgres://u@h/db?sslmode=prefer", "postgres://u@h/db?target_session_attrs=any", "postgres://u@,h/db",
        ])
    func refusesBadURLs(_ url: String) {
        #expect(throws: PostgresURLError.self) { try PostgresSettings.parse(url: url) }
    }
}
