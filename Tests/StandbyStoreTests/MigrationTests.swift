import Foundation
import GRDB
import StandbyApp
import StandbyCore
import StandbyPrimitives
import StandbyTestSupport
import Testing

@testable import StandbyStore

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

    @Test("a webhook's and a report's rows are checked without an ephemeral index per row (no IN-list CHECK)")
    func hotPathChecksBuildNoEphemeralIndex() throws {
        let folder = TemporaryFolder()
        let database = try StandbyDatabase(settings: DatabaseSettings(path: folder.path("standby.sqlite")))
        try database.migrate()
        let inserts = [
            "INSERT INTO deliveries (id, received_at, body, sha256, byte_count, outcome, alert_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
            "INSERT INTO alerts (id, alert_key, status, condition, first_delivery_id, last_delivery_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            "INSERT INTO health_reports (id, deployment_id, hub_id, source, outcome, observed_at, received_at, actor) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        ]
        try database.pool.read { db in
            for sql in inserts {
                let placeholders = [String?](repeating: nil, count: sql.filter { $0 == "?" }.count)
                let opcodes = try Row.fetchAll(db, sql: "EXPLAIN " + sql, arguments: StatementArguments(placeholders))
                    .map { $0["opcode"] as String }
                #expect(!opcodes.isEmpty)
                #expect(!opcodes.contains("OpenEphemeral"), "\(sql)")
            }
        }
    }

    @Test("0007 rebuilds deliveries, alerts and reports keeping every row, seq counter and constraint")
    func checkRebuildKeepsData() throws {
        let folder = TemporaryFolder()
        let database = try StandbyDatabase(settings: DatabaseSettings(path: folder.path("standby.sqlite")))
        try Migrations.migrator().migrate(database.pool, upTo: "0006_partial_event_indexes")
        try database.pool.write { db in
            for (index, status) in ["recognized", "malformed", "unrecognized"].enumerated() {
                try db.execute(
                    sql: """
                        INSERT INTO alerts (id, alert_key, status, condition, first_delivery_id, last_delivery_id,
                            created_at, updated_at)
                        VALUES (?, ?, ?, ?, ?, ?, 't', 't')
                        """,
                    arguments: ["a\(index)", "k\(index)", status, index == 0 ? "fired" : nil, "d\(index)", "d\(index)"])
                try db.execute(
                    sql: """
                        INSERT INTO deliveries (id, received_at, body, sha256, byte_count, outcome, alert_id)
                        VALUES (?, 't', ?, 's', 3, 'new', ?)
                        """,
                    arguments: ["d\(index)", Data([0, 1, UInt8(index)]), "a\(index)"])
            }
            try db.execute(sql: "INSERT INTO alert_hubs (alert_id, deployment_id, hub_id) VALUES ('a0', 'dep', 'hub')")
            try db.execute(sql: "DELETE FROM deliveries WHERE alert_id = 'a2'")
            // The newest alert is gone: AUTOINCREMENT must still never hand out its seq again.
            try db.execute(sql: "DELETE FROM alerts WHERE id = 'a2'")
            try db.execute(
                sql: """
                    INSERT INTO health_reports (id, deployment_id, hub_id, source, outcome, observed_at, received_at, actor)
                    VALUES ('r1', 'dep', 'hub', 'probe', 'failure', 't', 't', 'tester')
                    """)
        }
        try database.migrate()
        try database.pool.write { db in
            #expect(try String.fetchAll(db, sql: "SELECT id FROM alerts ORDER BY seq") == ["a0", "a1"])
            #expect(try Data.fetchOne(db, sql: "SELECT body FROM deliveries WHERE id = 'd1'") == Data([0, 1, 1]))
            #expect(try String.fetchOne(db, sql: "SELECT condition FROM alerts WHERE id = 'a0'") == "fired")
            #expect(try String.fetchAll(db, sql: "SELECT alert_id FROM alert_hubs") == ["a0"])
            #expect(try String.fetchOne(db, sql: "SELECT outcome FROM health_reports") == "failure")
            try db.execute(
                sql: """
                    INSERT INTO alerts (id, alert_key, status, first_delivery_id, last_delivery_id, created_at, updated_at)
                    VALUES ('a3', 'k3', 'recognized', 'd3', 'd3', 't', 't')
                    """)
            #expect(try Int.fetchOne(db, sql: "SELECT seq FROM alerts WHERE id = 'a3'") == 4)
            #expect(try String.fetchAll(db, sql: "SELECT name FROM sqlite_schema WHERE name LIKE '%_rebuilt'").isEmpty)
            #expect(try String.fetchAll(db, sql: "PRAGMA integrity_check") == ["ok"])
            #expect(try Row.fetchAll(db, sql: "PRAGMA foreign_key_check").isEmpty)
            let indexes = try String.fetchAll(
                db, sql: "SELECT name FROM sqlite_schema WHERE type = 'index' AND sql IS NOT NULL ORDER BY name")
            for index in [
                "alerts_condition", "alerts_status", "alerts_updated", "deliveries_alert", "health_reports_hub",
            ] {
                #expect(indexes.contains(index), "\(index) missing after the rebuild")
            }
        }
        for refused in [
            "INSERT INTO deliveries (id, received_at, body, sha256, byte_count, outcome) VALUES ('d9', 't', x'00', 's', 1, 'bogus')",
            "UPDATE alerts SET condition = 'maybe' WHERE id = 'a0'",
            "UPDATE alerts SET status = 'lost' WHERE id = 'a0'",
            "UPDATE health_reports SET outcome = 'meh'",
        ] {
            #expect(throws: DatabaseError.self, "\(refused)") {
                try database.pool.write { db in try db.execute(sql: refused) }
            }
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
                try EventChain.unkeyed.append(
                    EventDraft(
                        type: "test.event", at: at, hub: "h\(index)", actor: "tester",
                        data: .object(["n": .number(Double(index))])),
                    in: db)
            }
        }
        let events = try database.pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM events ORDER BY seq").map(EventsTable.record)
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
    static let awkward = [
        "", "plain", "quote \" and \\ backslash", "line\nfeed\r\ttab", "\u{01}\u{1f}control", "é ü 日本 🚀",
        "/subscriptions/x",
    ]

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
                seq: seq, at: "2026-11-28T10:00:00.000Z", type: text, deploymentId: deploymentId, hub: hub,
                actor: other,
                data: data)
            #expect(direct == reference)
            // And it is JSON that a standard parser reads back to the same strings.
            let parsed = try JSONSerialization.jsonObject(with: direct) as? [String: Any]
            #expect(parsed?["type"] as? String == text)
            #expect(parsed?["actor"] as? String == other)
        }
    }
}
