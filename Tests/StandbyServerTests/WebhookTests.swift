import Foundation
import GRDB
import HTTPTypes
import HummingbirdTesting
import NIOCore
import StandbyApp
import StandbyCore
import StandbyPrimitives
import StandbyServer
import StandbyStore
import StandbyTestSupport
import Testing

/// What a live server must store for each published payload.
struct StoredExpectation: Sendable, CustomTestStringConvertible {
    var file: String
    var status: String
    var kind: String?
    var condition: String?
    var hubs: [String]
    var testDescription: String { file }
}

let storedExpectations: [StoredExpectation] =
    [
        .init(
            file: "common-metric-static-resolved.json", status: "recognized", kind: "metric", condition: "resolved",
            hubs: []),
        .init(file: "common-log-alerts-v2-fired.json", status: "recognized", kind: "log", condition: "fired", hubs: []),
        .init(
            file: "test-action-activitylog-administrative.json", status: "recognized", kind: "activity-log",
            condition: "fired", hubs: ["eastus-hub"]),
        .init(
            file: "test-action-availability-webtest.json", status: "recognized", kind: "metric", condition: "fired",
            hubs: []),
        .init(file: "test-action-budget.json", status: "recognized", kind: "budget", condition: "fired", hubs: []),
        .init(
            file: "test-action-cost-budget-actual.json", status: "recognized", kind: "budget", condition: "fired",
            hubs: []),
        .init(
            file: "test-action-cost-budget-forecasted.json", status: "recognized", kind: "budget", condition: "fired",
            hubs: []),
        .init(
            file: "test-action-log-v1-metric-measurement.json", status: "recognized", kind: "log", condition: "fired",
            hubs: []),
        .init(
            file: "test-action-log-v1-number-of-results.json", status: "recognized", kind: "log", condition: "fired",
            hubs: []),
        .init(file: "test-action-log-v2.json", status: "recognized", kind: "log", condition: "fired", hubs: []),
        // The target is spelled microsoft.storage/storageaccounts; the hub lists Microsoft.Storage/storageAccounts.
        .init(
            file: "test-action-metric-dynamic.json", status: "recognized", kind: "metric", condition: "fired",
            hubs: ["eastus-hub"]),
        .init(
            file: "test-action-metric-static.json", status: "recognized", kind: "metric", condition: "fired",
            hubs: ["eastus-hub"]),
        .init(
            file: "test-action-resourcehealth.json", status: "recognized", kind: "resource-health", condition: "fired",
            hubs: ["eastus-hub"]),
        .init(
            file: "test-action-servicehealth.json", status: "recognized", kind: "service-health", condition: "resolved",
            hubs: []),
        .init(
            file: "test-action-smart-alert.json", status: "recognized", kind: "smart-detector", condition: "fired",
            hubs: []),
        // Legacy payloads target resources inside a resource group the west hub lists: child matching.
        .init(
            file: "legacy-metric-static.json", status: "recognized", kind: "metric", condition: "fired",
            hubs: ["westus-hub"]),
        .init(file: "legacy-log-appinsights-v1.json", status: "recognized", kind: "log", condition: "fired", hubs: []),
        .init(
            file: "legacy-activitylog-administrative-noncommon.json", status: "recognized", kind: "activity-log",
            condition: "fired", hubs: ["westus-hub"]),
        .init(
            file: "legacy-activitylog-resourcehealth-noncommon.json", status: "recognized", kind: "resource-health",
            condition: "fired", hubs: ["westus-hub"]),
    ]
    + Fixtures.allNames.filter { $0.hasPrefix("alertcontext-") }.map {
        StoredExpectation(file: $0, status: "unrecognized", kind: nil, condition: nil, hubs: [])
    }

@Suite("Azure Monitor webhook over HTTP")
struct WebhookTests {
    @Test(
        "every published payload is stored with its classification, condition and hubs", arguments: storedExpectations)
    func storesFixture(_ expectation: StoredExpectation) async throws {
        let standby = TestStandby()
        let body = try Fixtures.data(expectation.file)
        try await standby.run { client, _ in
            let response = try await client.postWebhook(body)
            #expect(response.status == (expectation.status == "unrecognized" ? .accepted : .ok))
            let alertId = try #require(response.json["alertId"]?.stringValue)
            let alert = try await client.get("/v1/alerts/\(alertId)").json
            #expect(alert["status"]?.stringValue == expectation.status)
            #expect(alert["kind"]?.stringValue == expectation.kind)
            #expect(alert["condition"]?.stringValue == expectation.condition)
            let hubs = (alert["hubs"]?.arrayValue ?? []).compactMap { $0["hubId"]?.stringValue }
            #expect(hubs == expectation.hubs)
            // The raw payload comes back exactly as it was sent.
            #expect(alert["raw"] == (try JSONValue.decode(body)))
        }
        let stored = try await standby.openDatabase().read { db in
            try Row.fetchOne(db, sql: "SELECT body, sha256 FROM deliveries").map {
                ($0["body"] as Data, $0["sha256"] as String)
            }
        }
        let row = try #require(stored)
        #expect(row.0 == body)
        #expect(row.1 == body.sha256Hex)
    }

    @Test("missing or wrong token: 401 problem and nothing stored; a rotated second token works")
    func authentication() async throws {
        let standby = TestStandby()
        let body = try Fixtures.data("test-action-metric-static.json")
        try await standby.run { client, _ in
            for token in [nil, "", "wrong-token", TestStandby.webhookToken + "x"] {
                let response = try await client.postWebhook(body, token: token)
                #expect(response.status == .unauthorized)
                #expect(response.headers[.contentType] == "application/problem+json")
                #expect(response.json["status"] == .number(401))
            }
            #expect(try await client.postWebhook(body, token: "rotated-second-token").status == .ok)
        }
        let count = try await standby.openDatabase().read { db in
            try Int.fetchOne(db, sql: "SELECT count(*) FROM deliveries")
        }
        #expect(count == 1)
    }

    @Test("with no webhook token configured, every delivery is refused")
    func noTokenConfigured() async throws {
        var configured = TestStandby()
        configured.webhookTokensYAML = "[\"${UNSET_TOKEN:-}\"]"
        let standby = configured
        try await standby.run { client, _ in
            let response = try await client.postWebhook(
                try Fixtures.data("test-action-metric-static.json"), token: "anything")
            #expect(response.status == .unauthorized)
            #expect(response.json["detail"]?.stringValue?.contains("no webhook token is configured") == true)
        }
    }

    @Test("a body over maxBodyBytes is refused with 413 and not stored")
    func tooLarge() async throws {
        var configured = TestStandby()
        configured.maxBodyBytes = 2048
        let standby = configured
        try await standby.live { client, _ in
            let big = Data(("{\"pad\":\"" + String(repeating: "x", count: 4096) + "\"}").utf8)
            let response = try await client.postWebhook(big)
            #expect(response.status == .contentTooLarge)
            #expect(response.headers[.contentType] == "application/problem+json")
            // Refused before its body was read, the connection is closed rather than drained; the
            // server stays healthy and takes the next delivery on a new one.
            #expect(response.headers[.connection] == "close")
            let next = try await FreshConnection.postWebhook(
                port: try #require(client.port), Data("{\"small\":true}".utf8))
            #expect(next.status == .accepted)
        }
        let count = try await standby.openDatabase().read { db in
            try Int.fetchOne(db, sql: "SELECT count(*) FROM deliveries")
        }
        #expect(count == 1)
    }

    @Test("malformed JSON: 400 problem, raw bytes still kept and listed as malformed")
    func malformed() async throws {
        let standby = TestStandby()
        let body = Data("{\"schemaId\": \"azureMonitorCommonAlertSchema\", \"data\": {".utf8)
        try await standby.run { client, _ in
            let response = try await client.postWebhook(body)
            #expect(response.status == .badRequest)
            #expect(response.headers[.contentType] == "application/problem+json")
            let alertId = try #require(response.json["alertId"]?.stringValue)
            let listed = try await client.get("/v1/alerts?status=malformed").json
            #expect(listed["items"]?.arrayValue?.map { $0["id"]?.stringValue } == [alertId])
            let detail = try await client.get("/v1/alerts/\(alertId)").json
            #expect(detail["rawBase64"]?.stringValue == body.base64EncodedString())
        }
        let stored = try await standby.openDatabase().read { db in
            try Row.fetchOne(db, sql: "SELECT body, outcome FROM deliveries").map {
                ($0["body"] as Data, $0["outcome"] as String)
            }
        }
        #expect(stored?.0 == body)
        #expect(stored?.1 == "malformed")
    }

    @Test("wrong content type is tolerated when the body is JSON")
    func contentTypeTolerated() async throws {
        let standby = TestStandby()
        try await standby.run { client, _ in
            let response = try await client.postWebhook(
                try Fixtures.data("test-action-metric-static.json"), contentType: "text/plain; charset=utf-8")
            #expect(response.status == .ok)
            #expect(response.json["outcome"]?.stringValue == "new")
        }
    }

    @Test("a repeated delivery adds no alert and no state change; the duplicate is counted")
    func duplicates() async throws {
        let standby = TestStandby()
        let body = try Fixtures.data("test-action-metric-static.json")
        try await standby.run { client, _ in
            var alertIds = Set<String>()
            for attempt in 0..<4 {
                let response = try await client.postWebhook(body)
                #expect(response.status == .ok)
                #expect(response.json["outcome"]?.stringValue == (attempt == 0 ? "new" : "duplicate"))
                alertIds.insert(response.json["alertId"]?.stringValue ?? "")
            }
            #expect(alertIds.count == 1)
            let list = try await client.get("/v1/alerts").json
            #expect(list["items"]?.arrayValue?.count == 1)
            let only = list["items"]?.arrayValue?.first
            #expect(only?["duplicateCount"] == .number(3))
            #expect(only?["deliveryCount"] == .number(4))
        }
        let (deliveries, changes) = try await standby.openDatabase().read { db in
            (
                try Int.fetchOne(db, sql: "SELECT count(*) FROM deliveries") ?? 0,
                try Int.fetchOne(db, sql: "SELECT count(*) FROM events WHERE type LIKE 'alert.%'") ?? 0
            )
        }
        #expect(deliveries == 4)
        #expect(changes == 1)
    }

    @Test("Fired then Resolved updates one alert; a late retry of Fired changes nothing")
    func firedThenResolved() async throws {
        let standby = TestStandby()
        let fired = try Fixtures.json("test-action-metric-static.json")
        let resolved = try Self.resolve(fired, at: "2025-04-15T18:30:00.1234567Z")
        try await standby.run { client, _ in
            let first = try await client.postWebhook(fired.canonicalData())
            let second = try await client.postWebhook(resolved.canonicalData())
            #expect(second.json["outcome"]?.stringValue == "changed")
            #expect(first.json["alertId"] == second.json["alertId"])
            let late = try await client.postWebhook(fired.canonicalData())
            #expect(late.json["outcome"]?.stringValue == "stale")
            let alertId = try #require(first.json["alertId"]?.stringValue)
            let alert = try await client.get("/v1/alerts/\(alertId)").json
            #expect(alert["condition"]?.stringValue == "resolved")
            #expect(alert["firedAt"]?.stringValue == "2025-04-15T18:17:12.851Z")
            #expect(alert["resolvedAt"]?.stringValue == "2025-04-15T18:30:00.123Z")
            #expect(alert["deliveries"]?.arrayValue?.count == 3)
            let resolvedList = try await client.get("/v1/alerts?condition=resolved").json
            #expect(resolvedList["items"]?.arrayValue?.count == 1)
            #expect(try await client.get("/v1/alerts?condition=fired").json["items"]?.arrayValue?.count == 0)
        }
    }

    static func resolve(_ fired: JSONValue, at time: String) throws -> JSONValue {
        guard case .object(var root) = fired, case .object(var data)? = root["data"],
            case .object(var essentials)? = data["essentials"]
        else { throw CancellationError() }
        essentials["monitorCondition"] = .string("Resolved")
        essentials["resolvedDateTime"] = .string(time)
        data["essentials"] = .object(essentials)
        root["data"] = .object(data)
        return .object(root)
    }

    @Test("a restart keeps every alert")
    func restartKeepsAlerts() async throws {
        let standby = TestStandby()
        let files = ["test-action-metric-static.json", "legacy-metric-static.json", "test-action-servicehealth.json"]
        let posted = try await standby.run { client, _ in
            var ids: [String] = []
            for file in files {
                ids.append(try await client.postWebhook(try Fixtures.data(file)).json["alertId"]?.stringValue ?? "")
            }
            return ids
        }
        try await standby.run { client, _ in
            let listed = try await client.get("/v1/alerts").json["items"]?.arrayValue?.compactMap {
                $0["id"]?.stringValue
            }
            #expect(Set(listed ?? []) == Set(posted))
            // The same delivery after the restart is still recognised as a duplicate.
            #expect(
                try await client.postWebhook(try Fixtures.data(files[0])).json["outcome"]?.stringValue == "duplicate")
        }
    }

    @Test("a database that cannot be written yields 503 with Retry-After, and recovers without restart")
    func databaseLocked() async throws {
        var configured = TestStandby()
        configured.busyTimeout = "200ms"
        let standby = configured
        let body = try Fixtures.data("test-action-metric-static.json")
        try await standby.run { client, _ in
            // Another process holds the write lock past the busy timeout.
            var blockerConfiguration = Configuration()
            blockerConfiguration.allowsUnsafeTransactions = true
            let blocker = try DatabaseQueue(path: standby.databasePath, configuration: blockerConfiguration)
            try await blocker.writeWithoutTransaction { db in try db.execute(sql: "BEGIN IMMEDIATE") }
            let refused = try await client.postWebhook(body)
            #expect(refused.status == .serviceUnavailable)
            #expect(refused.headers[.retryAfter] != nil)
            #expect(refused.headers[.contentType] == "application/problem+json")
            #expect(try await client.execute(uri: "/readyz", method: .get).status == .serviceUnavailable)
            try await blocker.writeWithoutTransaction { db in try db.execute(sql: "ROLLBACK") }
            let accepted = try await client.postWebhook(body)
            #expect(accepted.status == .ok)
            #expect(accepted.json["outcome"]?.stringValue == "new")
            #expect(try await client.execute(uri: "/readyz", method: .get).status == .ok)
        }
        let count = try await standby.openDatabase().read { db in
            try Int.fetchOne(db, sql: "SELECT count(*) FROM deliveries")
        }
        #expect(count == 1)
    }

    @Test("every delivery and alert change is in the event log")
    func eventsAppended() async throws {
        let standby = TestStandby()
        try await standby.run { client, _ in
            _ = try await client.postWebhook(try Fixtures.data("test-action-resourcehealth.json"))
            _ = try await client.postWebhook(try Fixtures.data("test-action-resourcehealth.json"))
        }
        let types = try await standby.openDatabase().read { db in
            try String.fetchAll(db, sql: "SELECT type FROM events ORDER BY seq")
        }
        // The Resource Health alert (user-initiated) is evidence: the hub turns degraded, once.
        #expect(types == ["alert.created", "delivery.received", "hub.health_changed", "delivery.received"])
    }
}
