import Foundation
import GRDB
import StandbyCore
@testable import StandbyStore
import StandbyTestSupport
import Testing

@Suite("Migrations")
struct MigrationTests {
    static let migrationsFolder = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("migrations")

    @Test("the embedded migrations are exactly the files of migrations/ (run scripts/embed-resources.sh)")
    func embeddedMatchesFolder() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.migrationsFolder.path)
            .filter { $0.hasSuffix(".sql") }.sorted()
        #expect(Migrations.all.map(\.name) == files.map { String($0.dropLast(4)) })
        for (migration, file) in zip(Migrations.all, files) {
            let text = try String(contentsOf: Self.migrationsFolder.appendingPathComponent(file), encoding: .utf8)
            let normalize = { (sql: String) in
                sql.split(separator: "\n", omittingEmptySubsequences: false)
                    .map { $0.replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression) }
                    .joined(separator: "\n").trimmingCharacters(in: .whitespacesAndNewlines)
            }
            #expect(normalize(migration.sql) == normalize(text), "\(file) differs from its embedded copy")
        }
    }

    @Test("migrating twice applies each file once, in order")
    func idempotent() throws {
        let folder = TemporaryFolder()
        let database = try StandbyDatabase(settings: DatabaseSettings(path: folder.path("db/standby.sqlite")))
        try database.migrate()
        try database.migrate()
        #expect(try database.appliedMigrations() == Migrations.all.map(\.name))
        let mode = try database.pool.read { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") }
        #expect(mode == "wal")
        let synchronous = try database.pool.write { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") }
        #expect(synchronous == 2)  // FULL
    }

    @Test("history filtered by deployment or hub still reads the (partial) indexes, not the whole table")
    func partialEventIndexesServeFilters() throws {
        let folder = TemporaryFolder()
        let database = try StandbyDatabase(settings: DatabaseSettings(path: folder.path("standby.sqlite")))
        try database.migrate()
        for (column, index) in [("deployment", "events_deployment"), ("hub", "events_hub")] {
            var query = EventQuery()
            if column == "deployment" { query.deployment = "foundry-prod" } else { query.hub = "eastus-hub" }
            let filter = EventHistory.filter(query)
            let plan = try database.pool.read { db in
                try Row.fetchAll(
                    db, sql: "EXPLAIN QUERY PLAN SELECT * FROM events \(filter.whereClause) ORDER BY seq ASC LIMIT 50",
                    arguments: filter.arguments
                ).map { $0["detail"] as String }.joined(separator: "; ")
            }
            #expect(plan.contains("USING INDEX \(index)"), "\(plan)")
        }
    }

    @Test("a database written by a newer build is refused with a clear error")
    func refusesNewerSchema() throws {
        let folder = TemporaryFolder()
        let path = folder.path("standby.sqlite")
        do {
            let database = try StandbyDatabase(settings: DatabaseSettings(path: path))
            try database.migrate()
            try database.pool.write { db in
                try db.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('9999_from_the_future')")
            }
        }
        let reopened = try StandbyDatabase(settings: DatabaseSettings(path: path))
        #expect {
            try reopened.migrate()
        } throws: { error in
            guard case StoreError.newerSchema(let unknown) = error else { return false }
            return unknown == ["9999_from_the_future"] && "\(error)".contains("newer Standby")
        }
    }
}

@Suite("Event log")
struct EventLogTests {
    @Test("events are numbered and hash-chained")
    func chain() throws {
        let folder = TemporaryFolder()
        let database = try StandbyDatabase(settings: DatabaseSettings(path: folder.path("standby.sqlite")))
        try database.migrate()
        let at = Timestamp.parse("2026-11-28T10:00:00Z")!
        try database.pool.write { db in
            for index in 0..<3 {
                try EventLog.append(
                    EventDraft(type: "test.event", at: at, hub: "h\(index)", actor: "tester", data: .object(["n": .number(Double(index))])),
                    in: db)
            }
        }
        let events = try database.pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM events ORDER BY seq").map(EventLog.record)
        }
        #expect(events.map(\.seq) == [1, 2, 3])
        var previous = EventLog.genesisHash
        for event in events {
            #expect(event.prevHash == previous)
            let body = EventLog.canonicalBody(
                seq: event.seq, at: event.at, type: event.type, deploymentId: event.deploymentId, hub: event.hub,
                actor: event.actor, data: event.data)
            #expect(event.hash == EventLog.chainHash(prevHash: previous, body: body))
            previous = event.hash
        }
    }
}

@Suite("Canonical event bodies")
struct CanonicalEventBodyTests {
    static let awkward = ["", "plain", "quote \" and \\ backslash", "line\nfeed\r\ttab", "\u{01}\u{1f}control", "é ü 日本 🚀", "/subscriptions/x"]

    @Test("the directly written body is byte for byte the canonical JSON of the event object")
    func matchesTheGenericWriter() throws {
        var seqs: [Int64] = [1, 9, 10, 4_294_967_296, 9_007_199_254_740_991]
        seqs += (0..<20).map { _ in Int64.random(in: 1...1_000_000_000) }
        for (index, seq) in seqs.enumerated() {
            let text = Self.awkward[index % Self.awkward.count]
            let other = Self.awkward[(index + 3) % Self.awkward.count]
            let data: JSONValue = .object([
                "text": .string(text), "n": .number(Double(index) / 3), "list": .strings([other, text]),
                "nested": .object(["b": .bool(index % 2 == 0), "a": .null]),
            ])
            let deploymentId: String? = index % 3 == 0 ? nil : other
            let hub: String? = index % 4 == 0 ? nil : text
            let reference = JSONValue.object([
                "seq": .number(Double(seq)), "at": .string("2026-11-28T10:00:00.000Z"), "type": .string(text),
                "deploymentId": deploymentId.map(JSONValue.string) ?? .null, "hub": hub.map(JSONValue.string) ?? .null,
                "actor": .string(other), "data": data,
            ]).canonicalData()
            let direct = EventLog.canonicalBody(
                seq: seq, at: "2026-11-28T10:00:00.000Z", type: text, deploymentId: deploymentId, hub: hub, actor: other,
                data: data)
            #expect(direct == reference)
            // And it is JSON that a standard parser reads back to the same strings.
            let parsed = try JSONSerialization.jsonObject(with: direct) as? [String: Any]
            #expect(parsed?["type"] as? String == text)
            #expect(parsed?["actor"] as? String == other)
        }
    }
}
