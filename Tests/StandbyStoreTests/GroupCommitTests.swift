import Foundation
import GRDB
import StandbyApp
import StandbyCore
import StandbyPostgres
import StandbyPrimitives
import StandbyTestSupport
import Synchronization
import Testing

@testable import StandbyStore

struct Refused: Error {}

/// Runs `write(0)` … `write(count - 1)` concurrently; returns the indexes whose write succeeded.
func concurrentWrites(_ count: Int, _ write: @escaping @Sendable (Int) async throws -> Void) async -> Set<Int> {
    await withTaskGroup(of: (Int, Bool).self) { group in
        for index in 0..<count {
            group.addTask {
                do {
                    try await write(index)
                    return (index, true)
                } catch {
                    return (index, false)
                }
            }
        }
        var succeeded: Set<Int> = []
        for await (index, ok) in group where ok { succeeded.insert(index) }
        return succeeded
    }
}

@Suite("Group commit")
struct GroupCommitTests {
    @Test("a batch told to gather waits that long for more writes, and they share its transaction")
    func gathering() async throws {
        let batches = Mutex<[Int]>([])
        let queue = GroupCommitQueue<Void>(
            label: "test.gathering", maximumBatch: 32, classify: { $0 }, gatherFor: { .seconds(1) },
            commit: { items, _ in
                batches.withLock { $0.append(items.count) }
                for item in items { try item.run(()) }
            })
        let started = ContinuousClock.now
        let succeeded = await concurrentWrites(6) { _ in try await queue.write { _ in } }
        #expect(succeeded.count == 6)
        #expect(batches.withLock { $0 } == [6])
        #expect(ContinuousClock.now - started >= .seconds(1))
    }

    @Test("the batch after one of several waits for its callers' next writes instead of starting with the first alone")
    func refillAfterABatch() async throws {
        let batches = Mutex<[Int]>([])
        let gate = DispatchSemaphore(value: 0)
        let queue = GroupCommitQueue<Void>(
            label: "test.refill", maximumBatch: 32, maximumRefill: .seconds(5), classify: { $0 },
            commit: { items, _ in
                let sizes = batches.withLock {
                    $0.append(items.count)
                    return $0
                }
                // The first batch holds the writer while six writes queue; the batch of those six
                // lasts 2 s, so the next one may wait 1 s for their callers to write again (long
                // enough for a machine busy with the other tests to run six tasks).
                if sizes.count == 1 { gate.wait() }
                if sizes.count == 2 { Thread.sleep(forTimeInterval: 2) }
                for item in items { try item.run(()) }
            })
        async let held: Void = queue.write { _ in }
        while batches.withLock({ $0.count }) == 0 { try await Task.sleep(for: .milliseconds(5)) }
        async let writers = concurrentWrites(6) { _ in
            try await queue.write { _ in }
            try await queue.write { _ in }
        }
        while queue.waiting.interactive < 6 { try await Task.sleep(for: .milliseconds(5)) }
        gate.signal()
        try await held
        #expect(await writers.count == 6)
        #expect(batches.withLock { $0 } == [1, 6, 6])
    }

    @Test("locks that other instances hold make batches gather, up to a bound; uncontended ones do not")
    func lockWaitsGathering() {
        let waits = LockWaits()
        #expect(waits.gathering == .zero)
        for _ in 0..<20 { waits.record(.microseconds(500)) }
        #expect(waits.gathering == .zero)
        for _ in 0..<40 { waits.record(.milliseconds(5)) }
        let gathering = waits.gathering
        #expect(gathering > .milliseconds(9) && gathering <= .milliseconds(10))
        for _ in 0..<40 { waits.record(.milliseconds(50)) }
        #expect(waits.gathering == LockWaits.maximumGathering)
        for _ in 0..<40 { waits.record(.zero) }
        #expect(waits.gathering == .zero)
    }

    @Test("concurrent writes share transactions; a failing write fails alone")
    func batchesAndIsolates() async throws {
        let folder = TemporaryFolder()
        let database = try StandbyDatabase(settings: DatabaseSettings(path: folder.path("standby.sqlite")))
        try database.migrate()
        let counter = CommitCounter()
        database.pool.add(transactionObserver: counter, extent: .databaseLifetime)
        let writes = 400
        let succeeded = await concurrentWrites(writes) { index in
            try await database.groupCommit.write { db in
                try db.execute(
                    sql:
                        "INSERT INTO readiness (id, checked_at) VALUES (1, ?) ON CONFLICT(id) DO UPDATE SET checked_at = excluded.checked_at",
                    arguments: ["\(index)"])
                try EventChain.unkeyed.append(
                    EventDraft(
                        type: "test", at: Date(timeIntervalSince1970: 0), actor: "t", data: .number(Double(index))),
                    in: db)
                if index % 10 == 3 { throw Refused() }
            }
        }
        #expect(succeeded == Set((0..<writes).filter { $0 % 10 != 3 }))
        let stored = try await database.pool.read { db in
            try Double.fetchAll(db, sql: "SELECT data FROM events ORDER BY seq").map { Int($0) }
        }
        // Exactly the writes that succeeded, and the hash chain is continuous across batches.
        #expect(Set(stored) == succeeded)
        #expect(stored.count == succeeded.count)
        let seqs = try await database.pool.read { db in
            try Int64.fetchAll(db, sql: "SELECT seq FROM events ORDER BY seq")
        }
        #expect(seqs == Array(1...Int64(seqs.count)))
        #expect(counter.commits < writes / 2)
    }
}

/// Holds the group-commit writer of `database` for `duration`, so that the writes made meanwhile
/// queue up and share transactions; returns when the writer is free again.
func holdWriter(of database: StandbyDatabase, for duration: Duration) async throws {
    let gate = DispatchSemaphore(value: 0)
    Task {
        try await Task.sleep(for: duration)
        gate.signal()
    }
    try await database.groupCommit.write { (_: WriteBatch) in gate.wait() }
}

@Suite("Group commit: shared work")
struct GroupCommitSharedWorkTests {
    @Test(
        "reports committed together share one control session; when saving it fails, each runs alone, and only the culprit's processing fails, its report still kept"
    )
    func sharedWorkFailureIsolatesTheCulprit() async throws {
        let folder = TemporaryFolder()
        let database = try StandbyDatabase(settings: DatabaseSettings(path: folder.path("standby.sqlite")))
        try database.migrate()
        // The culprit: the store refuses to save a failure window of deployment d7.
        try await database.pool.write { db in
            try db.execute(
                sql: """
                    CREATE TRIGGER poison BEFORE INSERT ON failure_windows WHEN NEW.deployment_id = 'd7'
                    BEGIN SELECT RAISE(ABORT, 'poisoned window'); END
                    """)
        }
        // Hub ids are unique across deployments, as the configuration requires.
        let deployments = (0..<12).map { index in
            DeploymentDefinition(
                id: "d\(index)", pattern: .activePassive,
                hubs: [
                    HubDefinition(
                        id: "east\(index)", region: "eastus", regionName: "East US", role: .primary, endpoint: "",
                        resources: []),
                    HubDefinition(
                        id: "west\(index)", region: "westus", regionName: "West US", role: .secondary, endpoint: "",
                        resources: []),
                ], policy: Policy())
        }
        let plane = ControlPlane(
            store: SQLiteControlStore(database: database), topology: Topology(deployments: deployments))
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        // Hold the writer, so that every report below queues up and they share one transaction.
        async let blocker: Void = holdWriter(of: database, for: .milliseconds(300))
        try await Task.sleep(for: .milliseconds(100))
        let succeeded = await concurrentWrites(deployments.count) { index in
            _ = try await plane.recordReports(
                [
                    HealthReportInput(
                        id: "r\(index)", deploymentId: "d\(index)", hubId: "east\(index)", source: "probe",
                        outcome: .failure,
                        observedAt: now, latencyMs: nil, statusCode: nil, detail: nil)
                ], actor: "test", now: now)
        }
        try await blocker
        // Every report is stored and answered: the culprit's processing failure is its own.
        #expect(succeeded == Set(0..<deployments.count))
        let (reports, windows, failures) = try await database.pool.read { db in
            (
                try String.fetchAll(db, sql: "SELECT id FROM health_reports ORDER BY id"),
                try String.fetchAll(db, sql: "SELECT deployment_id FROM failure_windows"),
                try String.fetchAll(db, sql: "SELECT data FROM events WHERE type = 'signal.processing_failed'")
            )
        }
        #expect(Set(reports) == Set((0..<deployments.count).map { "r\($0)" }))
        #expect(Set(windows) == Set((0..<deployments.count).filter { $0 != 7 }.map { "d\($0)" }))
        #expect(failures.count == 1)
        #expect(failures.first?.contains("report:r7") == true)
        // Units rolled back after appending, and appends after the rollback: still one chain.
        #expect(try await EventHistory(database: database).verify() > 0)
    }
}

@Suite("Group commit: one chain")
struct GroupCommitChainTests {
    @Test("units that append and then fail leave no gap: the history verifies, one event per unit that succeeded")
    func rolledBackAppendsLeaveOneChain() async throws {
        let folder = TemporaryFolder()
        let database = try StandbyDatabase(settings: DatabaseSettings(path: folder.path("standby.sqlite")))
        try database.migrate()
        let store = SQLiteControlStore(database: database)
        // Hold the writer, so that the units below queue up and share transactions.
        async let blocker: Void = holdWriter(of: database, for: .milliseconds(300))
        try await Task.sleep(for: .milliseconds(100))
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let succeeded = await concurrentWrites(40) { index in
            _ = try await store.sharedWrite(lane: .interactive, weight: 1) { units in
                try units.transaction.append(
                    EventDraft(type: "unit", at: now, actor: "test", data: .number(Double(index))))
                try units.transaction.append(
                    EventDraft(type: "unit.second", at: now, actor: "test", data: .number(Double(index))))
                if index % 3 == 1 { throw Refused() }
            }
        }
        try await blocker
        #expect(succeeded == Set((0..<40).filter { $0 % 3 != 1 }))
        #expect(try await EventHistory(database: database).verify() == succeeded.count * 2)
    }

    @Test("an append undone by a savepoint is not chained to: the next append links to the event before it")
    func savepointRollbackForgetsTheHead() async throws {
        let folder = TemporaryFolder()
        let database = try StandbyDatabase(settings: DatabaseSettings(path: folder.path("standby.sqlite")))
        try database.migrate()
        let store = SQLiteControlStore(database: database)
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        try await store.write { transaction in
            try transaction.append(EventDraft(type: "kept", at: now, actor: "test", data: .null))
            _ = try? transaction.inSavepoint {
                try transaction.append(EventDraft(type: "undone", at: now, actor: "test", data: .null))
                throw Refused()
            }
            try transaction.append(EventDraft(type: "kept", at: now, actor: "test", data: .null))
        }
        #expect(try await EventHistory(database: database).verify() == 2)
    }
}

@Suite("Storage trouble is a retry, not an error")
struct StorageTroubleTests {
    @Test("busy, locked, read-only, full, I/O errors become unavailable (503); constraint violations do not")
    func classification() {
        for code in [
            ResultCode.SQLITE_BUSY, .SQLITE_LOCKED, .SQLITE_READONLY, .SQLITE_FULL, .SQLITE_IOERR, .SQLITE_CANTOPEN,
        ] {
            guard case StoreError.unavailable = StoreError.classify(DatabaseError(resultCode: code)) else {
                Issue.record("\(code) was not classified as unavailable")
                continue
            }
        }
        #expect(StoreError.classify(DatabaseError(resultCode: .SQLITE_CONSTRAINT)) is DatabaseError)
    }
}
