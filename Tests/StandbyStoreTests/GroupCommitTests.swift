import Foundation
import GRDB
import StandbyCore
import StandbyPrimitives
import StandbyTestSupport
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

/// Counts writes in memory and inserts them once per batch; refuses to flush a batch holding a poisoned write.
final class SharedCounter: BatchParticipant {
    var values: [Int] = []
    private var beforeWrite: [Int] = []
    static let poison = 13

    func beginWrite() { beforeWrite = values }
    func rollbackWrite() { values = beforeWrite }
    func flush(_ db: Database, isolated: Bool) throws {
        if values.contains(Self.poison) { throw Refused() }
        for value in values {
            try EventChain.unkeyed.append(
                EventDraft(
                    type: "shared", at: Date(timeIntervalSince1970: 0), actor: "t", data: .number(Double(value))),
                in: db)
        }
    }
}

final class SharedCounterOwner: Sendable {}

@Suite("Group commit: shared work")
struct GroupCommitSharedWorkTests {
    @Test(
        "shared work is written once per batch; when it fails, each write is retried alone and only the culprit fails")
    func sharedWorkFailureIsolatesTheCulprit() async throws {
        let folder = TemporaryFolder()
        let database = try StandbyDatabase(settings: DatabaseSettings(path: folder.path("standby.sqlite")))
        try database.migrate()
        let owner = SharedCounterOwner()
        let writes = 120
        let succeeded = await concurrentWrites(writes) { index in
            try await database.groupCommit.write { (batch: WriteBatch) in
                try EventChain.unkeyed.append(
                    EventDraft(
                        type: "own", at: Date(timeIntervalSince1970: 0), actor: "t", data: .number(Double(index))),
                    in: batch.db)
                batch.participant(of: owner) { SharedCounter() }.values.append(index)
                // A write that fails on its own is undone in the shared work too.
                if index % 10 == 7 { throw Refused() }
            }
        }
        let expected = Set((0..<writes).filter { $0 % 10 != 7 && $0 != SharedCounter.poison })
        #expect(succeeded == expected)
        let (own, shared, seqs) = try await database.pool.read { db in
            (
                try Double.fetchAll(db, sql: "SELECT data FROM events WHERE type = 'own'").map { Int($0) },
                try Double.fetchAll(db, sql: "SELECT data FROM events WHERE type = 'shared'").map { Int($0) },
                try Int64.fetchAll(db, sql: "SELECT seq FROM events ORDER BY seq")
            )
        }
        #expect(Set(own) == expected)
        #expect(own.count == expected.count)
        #expect(Set(shared) == expected)
        #expect(shared.count == expected.count)
        #expect(seqs == Array(1...Int64(seqs.count)))
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
