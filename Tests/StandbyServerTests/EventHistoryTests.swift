import Foundation
import GRDB
import HTTPTypes
import HummingbirdTesting
import StandbyApp
import StandbyCore
import StandbyPrimitives
import StandbyServer
import StandbyStore
import StandbyTestSupport
import Testing

@Suite("Event history and audit")
struct EventHistoryTests {
    /// A history of a few dozen events: deliveries, alerts, reports, a failover and its commands.
    func makeHistory(_ standby: TestStandby, _ client: any TestClientProtocol) async throws {
        standby.time.set(TestStandby.start.addingTimeInterval(-60))
        for file in ["test-action-metric-static.json", "legacy-metric-static.json", "test-action-resourcehealth.json"] {
            _ = try await client.postWebhook(try Fixtures.data(file))
        }
        for offset: TimeInterval in [0, 10, 20] {
            try await standby.report(client, "eastus-hub", "failure", at: offset)
        }
    }

    func verify(
        _ lines: [String], key: Secret? = nil, chainKey: Secret? = nil, checkpoint: AuditCheckpoint? = nil
    ) -> AuditVerifier.Failure? {
        var verifier = AuditVerifier(chainKey: chainKey, anchorKey: key, checkpoint: checkpoint)
        do throws(AuditVerifier.Failure) {
            try verifier.checkCheckpointSignature()
            for line in lines {
                let (event, anchor) = EventExport.parse(line: line)
                if let anchor { try verifier.start(from: anchor) } else if let event { try verifier.check(event) }
            }
            try verifier.finish()
            return nil
        } catch {
            return error
        }
    }

    @Test("GET /v1/events filters and pages; the export streams NDJSON and CSV")
    func listAndExport() async throws {
        let standby = TestStandby()
        try await standby.run { client, _ in
            try await makeHistory(standby, client)
            let deliveries = try await client.get("/v1/events?type=delivery.received").json["items"]?.arrayValue ?? []
            #expect(deliveries.count == 3)
            let hub = try await client.get("/v1/events?hub=eastus-hub&limit=1000").json["items"]?.arrayValue ?? []
            #expect(!hub.isEmpty && hub.allSatisfy { $0["hub"] == .string("eastus-hub") })
            var seqs: [Double] = []
            var uri = "/v1/events?limit=4"
            while true {
                let page = try await client.get(uri).json
                seqs += (page["items"]?.arrayValue ?? []).compactMap { $0["seq"]?.doubleValue }
                guard let next = page["next"]?.stringValue else { break }
                uri = "/v1/events?limit=4&cursor=\(next)"
            }
            #expect(seqs == (1...seqs.count).map(Double.init))
            let ndjson = try await client.get("/v1/events/export?format=ndjson")
            #expect(ndjson.headers[.contentType] == "application/x-ndjson")
            let lines = ndjson.text.split(separator: "\n").map(String.init)
            #expect(lines.count == seqs.count)
            #expect(verify(lines) == nil)
            let csv = try await client.get("/v1/events/export?format=csv&type=failover.decided")
            let rows = csv.text.split(separator: "\r\n")
            #expect(rows.first == "seq,at,type,deploymentId,hub,actor,data,prevHash,hash")
            #expect(rows.count == 2)
            #expect(try await client.get("/v1/events/export?format=xml").status == .badRequest)
            // Tokens never reach the history; the token's name is the actor.
            #expect(!ndjson.text.contains(TestStandby.reporterToken) && !ndjson.text.contains(TestStandby.webhookToken))
            #expect(ndjson.text.contains(#""actor":"probe""#))
        }
    }

    @Test("tampering is found and the first bad seq named: modified, removed, inserted, reordered")
    func tamperedExports() async throws {
        let standby = TestStandby()
        let lines = try await standby.run { client, _ in
            try await makeHistory(standby, client)
            return try await client.get("/v1/events/export").text.split(separator: "\n").map(String.init)
        }
        #expect(lines.count > 10)
        var modified = lines
        modified[4] = modified[4].replacingOccurrences(of: #""actor":""#, with: #""actor":"x"#)
        #expect(verify(modified)?.seq == 5)
        #expect(verify(modified)?.reason.contains("modified") == true)
        var removed = lines
        removed.remove(at: 4)
        #expect(verify(removed)?.seq == 6)
        var inserted = lines
        inserted.insert(lines[2], at: 5)
        #expect(verify(inserted)?.seq == 3)
        var reordered = lines
        reordered.swapAt(6, 7)
        #expect(verify(reordered)?.seq == 8)
        var truncatedStart = lines
        truncatedStart.removeFirst()
        #expect(verify(truncatedStart)?.seq == 2)

        // The command-line verifier agrees and exits non-zero.
        let file = standby.folder.path("export.ndjson")
        try (modified.joined(separator: "\n") + "\n").write(toFile: file, atomically: true, encoding: .utf8)
        let (status, output) = try await runOffPool(["audit", "verify", file])
        #expect(status != 0)
        #expect(output.contains("seq 5"))
        try (lines.joined(separator: "\n") + "\n").write(toFile: file, atomically: true, encoding: .utf8)
        let (okStatus, okOutput) = try await runOffPool(["audit", "verify", file])
        #expect(okStatus == 0)
        #expect(okOutput.contains("ok: \(lines.count) events verified"))
    }

    func runOffPool(_ arguments: [String]) async throws -> (Int32, String) {
        try await blocking { Result { try Self.run(arguments) } }.get()
    }

    static func run(_ arguments: [String]) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = StandbyProcess.binary
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self))
    }

    @Test("the live database verifies, a modified row is found, and pruning leaves a signed anchor")
    func liveVerifyAndPrune() async throws {
        let standby = TestStandby()
        try await standby.run { client, _ in try await makeHistory(standby, client) }
        let database = try StandbyDatabase(settings: DatabaseSettings(path: standby.databasePath))
        let history = EventHistory(database: database)
        let total = try await history.verify(anchorKey: nil)
        #expect(total > 10)

        // Prune the first events (those before the reports) and verify what remains, with the key.
        let cutoff = try await database.pool.read { db in
            try String.fetchOne(db, sql: "SELECT at FROM events WHERE type = 'report.accepted' ORDER BY seq LIMIT 1")!
        }
        let outcome = try await history.prune(
            before: Timestamp.parse(cutoff)!, signingKey: "audit-key", now: standby.time.now())
        let removed = outcome.events
        #expect(removed > 0)
        #expect(try await history.verify(anchorKey: "audit-key") == total - removed + 1)
        await #expect(throws: AuditVerifier.Failure.self) { try await history.verify(anchorKey: "another-key") }
        // New events still chain after a prune.
        try await standby.run { client, _ in
            _ = try await client.postWebhook(try Fixtures.data("test-action-smart-alert.json"))
            let lines = try await client.get("/v1/events/export").text.split(separator: "\n").map(String.init)
            #expect(lines.first?.hasPrefix(#"{"anchor""#) == true)
            #expect(verify(lines, key: "audit-key") == nil)
        }

        try await database.pool.write { db in
            let seq = try Int64.fetchOne(db, sql: "SELECT seq FROM events ORDER BY seq LIMIT 1 OFFSET 3")!
            try db.execute(sql: "UPDATE events SET actor = 'mallory' WHERE seq = ?", arguments: [seq])
        }
        do {
            _ = try await history.verify(anchorKey: "audit-key")
            Issue.record("a modified row verified")
        } catch let failure as AuditVerifier.Failure {
            #expect(failure.reason.contains("modified"))
        }
    }

    @Test(
        "a prune removes the raw signals received before its date with the events, on either store",
        arguments: [false, true])
    func pruneRemovesRawSignals(postgres: Bool) async throws {
        var configured = TestStandby()
        if postgres { configured.databaseURL = try await PostgresTestServer.freshDatabaseURL() }
        let standby = configured
        try await standby.run { client, components in
            let old = try await client.postWebhook(try Fixtures.data("test-action-smart-alert.json"))
            let alertId = try #require(old.json["alertId"]?.stringValue)
            try await standby.report(client, "westus-hub", "success", at: 0)
            let readiness = try await client.send(
                .post, "/v1/readiness-reports",
                json:
                    #"{"hub":"westus-hub","check":"endpoints","status":"ready","observedAt":"\#(Timestamp.format(standby.time.now()))"}"#,
                token: TestStandby.reporterToken)
            #expect(readiness.status == .ok)
            // A day later: the same alert again, and another report; these stay.
            try await standby.report(client, "westus-hub", "success", at: 86_400)
            let recent = try await client.postWebhook(try Fixtures.data("test-action-smart-alert.json"))
            #expect(recent.json["outcome"]?.stringValue == "duplicate")

            let outcome = try await components.history.prune(
                before: TestStandby.start.addingTimeInterval(3600), signingKey: nil, now: standby.time.now())
            #expect(outcome.deliveries == 1)
            #expect(outcome.healthReports == 1)
            #expect(outcome.readinessReports == 1)
            #expect(outcome.events > 0)
            _ = try await components.history.verify(anchorKey: nil)

            // The alert stays, with the delivery that is left; the history records what went.
            let alert = try await client.get("/v1/alerts/\(alertId)").json
            #expect(alert["deliveries"]?.arrayValue?.count == 1)
            #expect(
                alert["deliveries"]?.arrayValue?.first?["id"]?.stringValue == recent.json["deliveryId"]?.stringValue)
            let pruned = try await client.get("/v1/events?type=history.pruned").json["items"]?.arrayValue ?? []
            #expect(pruned.first?["data"]?["deliveries"]?.doubleValue == 1)
            #expect(pruned.first?["data"]?["healthReports"]?.doubleValue == 1)
            #expect(pruned.first?["data"]?["readinessReports"]?.doubleValue == 1)
        }
    }
}
