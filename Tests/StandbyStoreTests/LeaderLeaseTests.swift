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
        let taken = try await first.heartbeat(instance("a"), leaseTTL: 1, now: Date())
        #expect(taken.holder == "a")
        // While it holds, another cannot take it, and a renewal keeps the epoch.
        #expect(try await second.heartbeat(instance("b"), leaseTTL: 1, now: Date()).holder == "a")
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
