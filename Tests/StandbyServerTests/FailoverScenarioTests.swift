import AsyncHTTPClient
import Foundation
import GRDB
import HTTPTypes
import HummingbirdTesting
import NIOCore
import NIOHTTP1
import StandbyApp
import StandbyCore
import StandbyPrimitives
import StandbyServer
import StandbyStore
import StandbyTestSupport
import Testing

/// End-to-end scenarios of DESIGN §4 over HTTP with a real database.
@Suite("Failover scenarios")
struct FailoverScenarioTests {
    func kinds(_ commands: [JSONValue]) -> [String] { commands.compactMap { $0["kind"]?.stringValue } }

    @Test("the field rule: two failures do nothing; the third within five minutes fails over")
    func seedRule() async throws {
        let standby = TestStandby()
        try await standby.run { client, _ in
            #expect(try await standby.report(client, "eastus-hub", "failure", at: 0).status == .ok)
            try await standby.report(client, "eastus-hub", "failure", at: 60)
            #expect(try await client.commands().isEmpty)
            #expect(try await client.deployment()["serving"] == .strings(["eastus-hub"]))
            try await standby.report(client, "eastus-hub", "failure", at: 120)
            let commands = try await client.commands()
            #expect(kinds(commands) == ["scale_compute", "route_traffic"])
            #expect(commands.first?["hub"] == .string("westus-hub"))
            #expect(commands.first?["parameters"]?["direction"] == .string("up"))
            #expect(commands.last?["fromHub"] == .string("eastus-hub"))
            #expect(commands.last?["toHub"] == .string("westus-hub"))
            #expect(commands.allSatisfy { $0["status"] == .string("pending") })
            let events = try await client.failoverEvents()
            #expect(events.count == 1)
            #expect(events.first?["kind"] == .string("failover"))
            #expect(events.first?["trigger"] == .string("window"))
            #expect(events.first?["status"] == .string("open"))
            #expect(events.first?["reason"]?.stringValue?.contains("3 consecutive failures") == true)
            let windows = try await client.get("/v1/failure-windows?open=true").json["items"]?.arrayValue ?? []
            #expect(windows.count == 1)
            #expect(windows.first?["hubId"] == .string("eastus-hub"))
            #expect(windows.first?["failureCount"] == .number(3))
            #expect(windows.first?["declaredDownAt"] != nil)
            let deployment = try await client.deployment()
            #expect(deployment["serving"] == .strings(["westus-hub"]))
            let east = deployment["hubs"]?.arrayValue?.first { $0["id"] == .string("eastus-hub") }
            #expect(east?["health"] == .string("down"))
            #expect(east?["sources"]?.arrayValue?.first?["source"] == .string("probe:probe-westeurope"))
            #expect(east?["openWindow"]?["failureCount"] == .number(3))
            // A fourth failure changes nothing more.
            try await standby.report(client, "eastus-hub", "failure", at: 180)
            #expect(try await client.commands().count == 2)
        }
    }

    @Test("a broken streak does nothing: fail, fail, success, fail, fail")
    func brokenStreak() async throws {
        let standby = TestStandby()
        try await standby.run { client, _ in
            for (offset, outcome) in [
                (0.0, "failure"), (30, "failure"), (60, "success"), (90, "failure"), (120, "failure"),
            ] {
                try await standby.report(client, "eastus-hub", outcome, at: offset)
            }
            #expect(try await client.commands().isEmpty)
            #expect(try await client.failoverEvents().isEmpty)
            let windows = try await client.get("/v1/failure-windows?hub=eastus-hub").json["items"]?.arrayValue ?? []
            #expect(windows.count == 2)
            #expect(windows.filter { $0["open"] == .bool(true) }.count == 1)
        }
    }

    @Test("failures spread wider than the window do nothing")
    func spreadFailures() async throws {
        let standby = TestStandby()
        try await standby.run { client, _ in
            for offset in [0.0, 200, 400] {
                standby.time.set(Timestamp.parse("2026-11-28T10:00:00Z")!.addingTimeInterval(offset))
                try await standby.report(client, "eastus-hub", "failure", at: offset)
            }
            #expect(try await client.commands().isEmpty)
        }
    }

    @Test("reports arriving in one batch are stored atomically and placed by observedAt")
    func batch() async throws {
        let standby = TestStandby()
        try await standby.run { client, _ in
            let body = """
                {"reports":[
                  {"hub":"eastus-hub","source":"p1","outcome":"failure","observedAt":"2026-11-28T09:59:50Z"},
                  {"hub":"eastus-hub","source":"p1","outcome":"failure","observedAt":"2026-11-28T09:59:30Z"},
                  {"hub":"eastus-hub","source":"p1","outcome":"failure","observedAt":"2026-11-28T09:59:40Z"}
                ]}
                """
            let response = try await client.send(
                .post, "/v1/health-reports", json: body, token: TestStandby.reporterToken)
            #expect(response.status == .ok)
            #expect(response.json["accepted"] == .number(3))
            #expect(try await client.commands().count == 2)
            // The same batch again: all duplicates, nothing new.
            let again = try await client.send(.post, "/v1/health-reports", json: body, token: TestStandby.reporterToken)
            #expect(again.json["duplicates"] == .number(3))
            // Each duplicate is answered with the id the report was first stored under.
            let firstIds = response.json["reports"]?.arrayValue?.compactMap { $0["id"]?.stringValue }
            #expect(firstIds?.count == 3)
            #expect(again.json["reports"]?.arrayValue?.compactMap { $0["id"]?.stringValue } == firstIds)
            #expect(try await client.commands().count == 2)
        }
    }

    @Test("invalid reports: 4xx problems naming the field, and nothing of the batch is stored")
    func validation() async throws {
        let standby = TestStandby()
        try await standby.run { client, _ in
            let cases: [(String, HTTPResponse.Status, String)] = [
                (
                    #"{"hub":"nowhere","source":"p","outcome":"failure","observedAt":"2026-11-28T10:00:00Z"}"#,
                    .unprocessableContent, "hub"
                ),
                (
                    #"{"hub":"eastus-hub","source":"p","outcome":"broken","observedAt":"2026-11-28T10:00:00Z"}"#,
                    .unprocessableContent, "outcome"
                ),
                (#"{"hub":"eastus-hub","source":"p","outcome":"failure"}"#, .unprocessableContent, "observedAt"),
                (
                    #"{"hub":"eastus-hub","source":"p","outcome":"failure","observedAt":"soon"}"#,
                    .unprocessableContent, "observedAt"
                ),
                (
                    #"{"hub":"eastus-hub","source":"p","outcome":"failure","observedAt":"2026-11-28T10:01:00Z"}"#,
                    .unprocessableContent, "observedAt"
                ),
                (
                    #"{"hub":"eastus-hub","outcome":"failure","observedAt":"2026-11-28T10:00:00Z"}"#,
                    .unprocessableContent, "source"
                ),
                (
                    #"{"hub":"eastus-hub","source":"p","outcome":"failure","observedAt":"2026-11-28T10:00:00Z","latencyMs":"slow"}"#,
                    .unprocessableContent, "latencyMs"
                ),
                (
                    #"{"reports":[{"hub":"eastus-hub","source":"p","outcome":"failure","observedAt":"2026-11-28T10:00:00Z"},{"hub":"eastus-hub","source":"p","outcome":"nope","observedAt":"2026-11-28T10:00:01Z"}]}"#,
                    .unprocessableContent, "reports[1].outcome"
                ),
                (#"{"reports":[]}"#, .unprocessableContent, "reports"),
                ("{not json", .badRequest, ""),
            ]
            for (body, status, field) in cases {
                let response = try await client.send(
                    .post, "/v1/health-reports", json: body, token: TestStandby.reporterToken)
                #expect(response.status == status, "\(body)")
                #expect(response.headers[.contentType] == "application/problem+json")
                if !field.isEmpty { #expect(response.json["field"] == .string(field), "\(body)") }
            }
            let tooMany =
                "{\"reports\":["
                + Array(
                    repeating:
                        #"{"hub":"eastus-hub","source":"p","outcome":"success","observedAt":"2026-11-28T10:00:00Z"}"#,
                    count: 1001
                ).joined(separator: ",") + "]}"
            #expect(
                try await client.send(.post, "/v1/health-reports", json: tooMany, token: TestStandby.reporterToken)
                    .status == .unprocessableContent)
            #expect(
                try await client.send(.post, "/v1/health-reports", json: "{}", token: TestStandby.readerToken).status
                    == .forbidden)
        }
        let stored = try await standby.openDatabase().read { db in
            try Int.fetchOne(db, sql: "SELECT count(*) FROM health_reports")
        }
        #expect(stored == 0)
    }

    @Test("a Service Health incident naming the primary's region fails over")
    func serviceHealthIncident() async throws {
        let standby = TestStandby()
        try await standby.run { client, _ in
            let incident = Self.serviceHealth(stage: "Active", at: "2026-11-28T09:58:00Z")
            #expect(try await client.postWebhook(incident).status == .ok)
            let events = try await client.failoverEvents()
            #expect(events.count == 1)
            #expect(events.first?["trigger"] == .string("alert"))
            #expect(events.first?["rule"] == .string("service-health-incident"))
            #expect(kinds(try await client.commands()) == ["scale_compute", "route_traffic"])
            // Azure retries the delivery: nothing more happens.
            #expect(try await client.postWebhook(incident).json["outcome"] == .string("duplicate"))
            #expect(try await client.commands().count == 2)
            // Resolution makes the primary healthy again; manual mode means no automatic failback.
            #expect(
                try await client.postWebhook(Self.serviceHealth(stage: "Resolved", at: "2026-11-28T09:59:00Z")).status
                    == .ok)
            let east = try await client.deployment()["hubs"]?.arrayValue?.first { $0["id"] == .string("eastus-hub") }
            #expect(east?["health"] == .string("up"))
            #expect(try await client.failoverEvents().count == 1)
        }
    }

    static func serviceHealth(stage: String, at: String) -> Data {
        Data(
            """
            {"schemaId":"azureMonitorCommonAlertSchema","data":{"essentials":{
              "alertId":"/subscriptions/1/providers/Microsoft.AlertsManagement/alerts/sh-\(stage)","alertRule":"hubs-service-health",
              "severity":"Sev1","signalType":"Activity Log","monitorCondition":"Fired","monitoringService":"ServiceHealth",
              "alertTargetIDs":["/subscriptions/1"],"firedDateTime":"\(at)"},
              "alertContext":{"eventSource":"ServiceHealth","status":"\(stage == "Resolved" ? "Resolved" : "Active")",
                "operationName":"Microsoft.ServiceHealth/incident/action","eventTimestamp":"\(at)",
                "properties":{"title":"AML degraded in East US","incidentType":"Incident","trackingId":"ZX-123","stage":"\(stage)",
                  "communicationId":"c-\(stage)",
                  "impactedServices":"[{\\"ImpactedRegions\\":[{\\"RegionName\\":\\"East US\\"}],\\"ServiceName\\":\\"Azure Machine Learning\\"}]"}}}}
            """.utf8)
    }

    func failOver(_ standby: TestStandby, _ client: any TestClientProtocol) async throws {
        for offset in [0.0, 10, 20] { try await standby.report(client, "eastus-hub", "failure", at: offset) }
    }

    func acknowledgeAll(_ client: any TestClientProtocol) async throws {
        for command in try await client.commands("?status=pending") {
            let id = try #require(command["id"]?.stringValue)
            let ack = try await client.send(
                .post, "/v1/commands/\(id)/ack", json: #"{"outcome":"succeeded","detail":"done"}"#)
            #expect(ack.status == .ok)
        }
    }

    @Test("acknowledgements are idempotent and complete the failover event")
    func acknowledgements() async throws {
        let standby = TestStandby()
        try await standby.run { client, _ in
            try await failOver(standby, client)
            let commands = try await client.commands()
            let first = try #require(commands.first?["id"]?.stringValue)
            let ack = #"{"outcome":"succeeded","detail":"scaled"}"#
            #expect(
                try await client.send(.post, "/v1/commands/\(first)/ack", json: ack).json["status"]
                    == .string("succeeded"))
            #expect(try await client.send(.post, "/v1/commands/\(first)/ack", json: ack).status == .ok)
            #expect(
                try await client.send(.post, "/v1/commands/\(first)/ack", json: #"{"outcome":"failed"}"#).status
                    == .conflict)
            #expect(try await client.failoverEvents().first?["status"] == .string("open"))
            let second = try #require(commands.last?["id"]?.stringValue)
            #expect(try await client.send(.post, "/v1/commands/\(second)/ack", json: ack).status == .ok)
            #expect(try await client.failoverEvents().first?["status"] == .string("completed"))
            #expect(try await client.deployment()["automation"]?["openFailoverEventId"] == nil)
            #expect(try await client.send(.post, "/v1/commands/nope/ack", json: ack).status == .notFound)
            // The generated server rejects what the contract rejects, before the handler runs.
            let maybe = try await client.send(.post, "/v1/commands/\(second)/ack", json: #"{"outcome":"maybe"}"#)
            #expect(maybe.status == .badRequest)
            #expect(maybe.headers[.contentType] == "application/problem+json")
            #expect(maybe.json["detail"]?.stringValue?.contains("outcome") == true, "\(maybe.text)")
            #expect(
                try await client.send(.post, "/v1/commands/\(second)/ack", json: ack, token: TestStandby.readerToken)
                    .status == .forbidden)
        }
    }

    @Test("a failed command fails its failover event")
    func failedCommand() async throws {
        let standby = TestStandby()
        try await standby.run { client, _ in
            try await failOver(standby, client)
            let id = try #require(try await client.commands().first?["id"]?.stringValue)
            _ = try await client.send(.post, "/v1/commands/\(id)/ack", json: #"{"outcome":"failed","detail":"quota"}"#)
            #expect(try await client.failoverEvents().first?["status"] == .string("failed"))
        }
    }

    @Test("recovery in manual mode: no automatic failback; an operator fails back with a reason")
    func manualFailback() async throws {
        let standby = TestStandby()
        try await standby.run { client, components in
            try await failOver(standby, client)
            try await acknowledgeAll(client)
            // The probe keeps reporting: stability needs evidence, a silent source is only stale.
            // Healthy from the fifth success (offset 270); stable 15 minutes later.
            for offset in stride(from: 30.0, through: 270 + 16 * 60, by: 60) {
                try await standby.report(client, "eastus-hub", "success", at: offset)
            }
            try await components.controlPlane.tick(now: standby.time.now())
            #expect(try await client.failoverEvents().count == 1)
            let deployment = try await client.deployment()
            #expect(deployment["serving"] == .strings(["westus-hub"]))
            #expect(deployment["automation"]?["failbackReady"] == .bool(true))
            // Without a reason the operator is refused; with one the traffic goes back.
            let noReason = try await client.send(.post, "/v1/deployments/foundry-prod/failback", json: "{}")
            #expect(noReason.status == .badRequest)
            #expect(noReason.json["detail"]?.stringValue?.contains("reason") == true, "\(noReason.text)")
            let blankReason = try await client.send(
                .post, "/v1/deployments/foundry-prod/failback", json: #"{"reason":"  "}"#)
            #expect(blankReason.status == .unprocessableContent)
            #expect(blankReason.json["field"] == .string("reason"))
            let failback = try await client.send(
                .post, "/v1/deployments/foundry-prod/failback", json: #"{"reason":"East US recovered"}"#)
            #expect(failback.status == .ok)
            #expect(failback.json["kind"] == .string("failback"))
            #expect(failback.json["actor"] == .string("app-layer"))
            #expect(
                kinds(failback.json["commands"]?.arrayValue ?? []) == [
                    "scale_compute", "route_traffic", "scale_compute",
                ])
            #expect(try await client.deployment()["serving"] == .strings(["eastus-hub"]))
        }
        let actors = try await standby.openDatabase().read { db in
            try String.fetchAll(db, sql: "SELECT actor FROM events WHERE type = 'operator.failback'")
        }
        #expect(actors == ["app-layer"])
    }

    @Test("automatic failback after stableFor, driven by the clock")
    func automaticFailback() async throws {
        var configured = TestStandby()
        configured.deploymentsYAML = configured.deploymentsYAML.replacingOccurrences(
            of: "    policy:\n",
            with: "    policy:\n      failback: { mode: automatic, stableFor: 15m }\n      cooldown: 1m\n")
        let standby = configured
        try await standby.run { client, components in
            try await failOver(standby, client)
            try await acknowledgeAll(client)
            // Healthy from the fifth success (offset 190); failback due 15 minutes later, at 1090.
            for offset in stride(from: 30.0, through: 1070, by: 40) {
                try await standby.report(client, "eastus-hub", "success", at: offset)
            }
            try await components.controlPlane.tick(now: standby.time.now())
            #expect(try await client.failoverEvents().count == 1)
            try await standby.report(client, "eastus-hub", "success", at: 1100)
            try await components.controlPlane.tick(now: standby.time.now())
            let events = try await client.failoverEvents()
            #expect(events.count == 2)
            #expect(events.first?["kind"] == .string("failback"))
            #expect(events.first?["trigger"] == .string("stability"))
            #expect(try await client.deployment()["serving"] == .strings(["eastus-hub"]))
        }
    }

    @Test("secondary also DOWN: no failover, and the deployment says why")
    func secondaryDown() async throws {
        let standby = TestStandby()
        try await standby.run { client, _ in
            for offset in [0.0, 10, 20] { try await standby.report(client, "westus-hub", "failure", at: offset) }
            try await failOver(standby, client)
            #expect(try await client.commands().isEmpty)
            let automation = try await client.deployment()["automation"]
            #expect(automation?["state"] == .string("held"))
            #expect(automation?["reason"]?.stringValue?.contains("westus-hub is DOWN") == true)
        }
    }

    @Test("operator failover to a DOWN hub is refused unless forced and explicitly allowed")
    func operatorGuardrails() async throws {
        let standby = TestStandby()
        try await standby.run { client, _ in
            for offset in [0.0, 10, 20] { try await standby.report(client, "westus-hub", "failure", at: offset) }
            let refused = try await client.send(
                .post, "/v1/deployments/foundry-prod/failover", json: #"{"reason":"drill"}"#)
            #expect(refused.status == .conflict)
            #expect(refused.json["detail"]?.stringValue?.contains("DOWN") == true)
            let forcedOnly = try await client.send(
                .post, "/v1/deployments/foundry-prod/failover", json: #"{"reason":"drill","force":true}"#)
            #expect(forcedOnly.status == .conflict)
            let allowed = try await client.send(
                .post, "/v1/deployments/foundry-prod/failover",
                json: #"{"reason":"drill","force":true,"allowUnhealthyTarget":true}"#)
            #expect(allowed.status == .ok)
            #expect(
                try await client.send(.post, "/v1/deployments/nowhere/failover", json: #"{"reason":"x"}"#).status
                    == .notFound)
        }
    }

    @Test("pause holds automation; resume lets it act")
    func pauseResume() async throws {
        let standby = TestStandby()
        try await standby.run { client, _ in
            let paused = try await client.send(
                .post, "/v1/deployments/foundry-prod/pause", json: #"{"reason":"maintenance window"}"#)
            #expect(paused.json["automation"]?["state"] == .string("paused"))
            try await failOver(standby, client)
            #expect(try await client.commands().isEmpty)
            _ = try await client.send(.post, "/v1/deployments/foundry-prod/resume", json: #"{"reason":"done"}"#)
            try await standby.report(client, "eastus-hub", "failure", at: 30)
            #expect(kinds(try await client.commands()) == ["scale_compute", "route_traffic"])
        }
    }

    @Test("dry run: decisions recorded, commands dry_run and never pending")
    func dryRun() async throws {
        var configured = TestStandby()
        configured.deploymentsYAML = configured.deploymentsYAML.replacingOccurrences(
            of: "    policy:\n", with: "    policy:\n      dryRun: true\n")
        let standby = configured
        try await standby.run { client, _ in
            try await failOver(standby, client)
            let commands = try await client.commands()
            #expect(commands.count == 2)
            #expect(commands.allSatisfy { $0["status"] == .string("dry_run") })
            #expect(try await client.commands("?status=pending").isEmpty)
            #expect(try await client.failoverEvents().first?["status"] == .string("dry_run"))
            #expect(try await client.deployment()["automation"]?["state"] == .string("dry-run"))
        }
    }

    @Test("active-active: a DOWN hub leaves the rotation and is restored after stableFor")
    func activeActive() async throws {
        var configured = TestStandby()
        configured.deploymentsYAML = """
              - id: foundry-aa
                pattern: active-active
                hubs:
                  - { id: eastus-hub, region: eastus, regionName: East US, role: primary }
                  - { id: westus-hub, region: westus, regionName: West US, role: secondary }
                policy:
                  failback: { mode: automatic, stableFor: 5m }
                  cooldown: 0s
            """
        let standby = configured
        try await standby.run { client, components in
            for offset in [0.0, 10, 20] { try await standby.report(client, "westus-hub", "failure", at: offset) }
            #expect(kinds(try await client.commands()) == ["remove_from_rotation"])
            #expect(try await client.deployment("foundry-aa")["serving"] == .strings(["eastus-hub"]))
            // The last serving hub is never removed.
            for offset in [0.0, 10, 20] { try await standby.report(client, "eastus-hub", "failure", at: offset) }
            #expect(try await client.commands().count == 1)
            try await acknowledgeAll(client)
            // Healthy from the fifth success (offset 190); restored 5 minutes later.
            for offset in stride(from: 30.0, through: 190 + 6 * 60, by: 40) {
                try await standby.report(client, "westus-hub", "success", at: offset)
                try await standby.report(client, "eastus-hub", "success", at: offset)
            }
            try await components.controlPlane.tick(now: standby.time.now())
            #expect(kinds(try await client.commands()) == ["remove_from_rotation", "restore_to_rotation"])
            #expect(try await client.deployment("foundry-aa")["serving"] == .strings(["eastus-hub", "westus-hub"]))
        }
    }

    @Test("a restart in the middle of a failover keeps its state and emits nothing twice")
    func restartMidFailover() async throws {
        let standby = TestStandby()
        try await standby.run { client, _ in
            try await failOver(standby, client)
            #expect(try await client.commands().count == 2)
        }
        try await standby.run { client, components in
            try await standby.report(client, "eastus-hub", "failure", at: 30)
            try await components.controlPlane.tick(now: standby.time.now())
            #expect(try await client.commands().count == 2)
            #expect(try await client.deployment()["serving"] == .strings(["westus-hub"]))
            try await acknowledgeAll(client)
            #expect(try await client.failoverEvents().first?["status"] == .string("completed"))
        }
        let count = try await standby.openDatabase().read { db in
            try Int.fetchOne(db, sql: "SELECT count(*) FROM commands")
        }
        #expect(count == 2)
    }

    @Test("single-region: the outage is recorded with no command")
    func singleRegion() async throws {
        var configured = TestStandby()
        configured.deploymentsYAML = """
              - id: solo
                pattern: single-region
                hubs:
                  - { id: eastus-hub, region: eastus, regionName: East US, role: primary }
            """
        let standby = configured
        try await standby.run { client, _ in
            try await failOver(standby, client)
            let events = try await client.failoverEvents()
            #expect(events.first?["kind"] == .string("outage"))
            #expect(events.first?["status"] == .string("recorded"))
            #expect(try await client.commands().isEmpty)
        }
    }
}

/// Many writes at once share group-commit batches, and with them one control session per batch.
@Suite("Failover scenarios under concurrency")
struct ConcurrentFailoverTests {
    @Test(
        "an alert storm with the threshold-crossing reports in the same batches: one failover, every delivery kept, the history intact"
    )
    func stormWithReports() async throws {
        let standby = TestStandby()
        standby.time.set(TestStandby.start.addingTimeInterval(30))
        try await standby.live { client, components in
            let port = try #require(client.port)
            let context = try Fixtures.json("alertcontext-metric-static-platform.json")
            let target =
                "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/test-RG/providers/Microsoft.Storage/storageAccounts/test-storageAccount"
            var requests: [(path: String, token: String?, body: Data)] = (0..<90).map { index in
                let body = Fixtures.commonEnvelope(
                    alertContext: context, monitoringService: "Platform", signalType: "Metric", rule: "storm-\(index)",
                    targets: [target])
                return ("/webhooks/azure-monitor?token=\(TestStandby.webhookToken)", nil, body)
            }
            // Azure retries some deliveries; the three failures cross the threshold in any order.
            requests += requests.prefix(10)
            let offsets: [TimeInterval] = [0, 10, 20]
            for offset in offsets {
                let observed = Timestamp.format(TestStandby.start.addingTimeInterval(offset))
                let report =
                    #"{"hub":"eastus-hub","source":"probe-westeurope","outcome":"failure","observedAt":"\#(observed)"}"#
                requests.insert(
                    ("/v1/health-reports", TestStandby.reporterToken, Data(report.utf8)), at: 40 + Int(offset))
            }
            let commits = CommitCounter()
            components.database!.pool.add(transactionObserver: commits, extent: .databaseLifetime)
            let http = HTTPClient(eventLoopGroupProvider: .singleton)
            let statuses = try await withThrowingTaskGroup(of: UInt.self) { group in
                for request in requests {
                    group.addTask {
                        var outgoing = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(request.path)")
                        outgoing.method = .POST
                        if let token = request.token {
                            outgoing.headers.add(name: "Authorization", value: "Bearer \(token)")
                        }
                        outgoing.body = .bytes(ByteBuffer(bytes: request.body))
                        let response = try await http.execute(outgoing, timeout: .seconds(20))
                        _ = try await response.body.collect(upTo: 1 << 20)
                        return response.status.code
                    }
                }
                var all: [UInt] = []
                for try await status in group { all.append(status) }
                return all
            }
            try await http.shutdown()
            #expect(statuses.count == 103)
            #expect(statuses.allSatisfy { $0 == 200 })
            // The writes did share transactions.
            #expect(commits.commits < requests.count)

            #expect(try await client.failoverEvents().count == 1)
            #expect(
                try await client.commands().compactMap { $0["kind"]?.stringValue } == [
                    "scale_compute", "route_traffic",
                ])
            #expect(try await client.deployment()["serving"] == .strings(["westus-hub"]))
            let (deliveries, alerts, duplicates, batches) = try await components.database!.pool.read { db in
                (
                    try Int.fetchOne(db, sql: "SELECT count(*) FROM deliveries") ?? 0,
                    try Int.fetchOne(db, sql: "SELECT count(*) FROM alerts WHERE status = 'recognized'") ?? 0,
                    try Int.fetchOne(db, sql: "SELECT sum(duplicate_count) FROM alerts") ?? 0,
                    try Int.fetchOne(db, sql: "SELECT count(*) FROM events WHERE type = 'failover.decided'") ?? 0
                )
            }
            #expect(deliveries == 100)
            #expect(alerts == 90)
            #expect(duplicates == 10)
            #expect(batches == 1)
            #expect(try await components.history.verify(anchorKey: nil) > 0)
        }
    }
}

@Suite("Raw first for signals")
struct SignalProcessingFailureTests {
    @Test("a delivery whose signals cannot be processed is still stored and answered; the failure is in the history")
    func unprocessableDeliveryIsKept() async throws {
        let standby = TestStandby()
        try await standby.run { client, components in
            // A hub state this build cannot read: applying the alert's signal to it fails.
            try await components.database!.pool.write { db in
                try db.execute(
                    sql: """
                        INSERT INTO hub_health (deployment_id, hub_id, health, state, revision, updated_at)
                        VALUES ('foundry-prod', 'eastus-hub', 'up', 'not json', 'corrupt', ?)
                        """,
                    arguments: [Timestamp.format(standby.time.now())])
            }
            let body = try Fixtures.data("test-action-metric-static.json")
            let response = try await client.postWebhook(body)
            #expect(response.status == .ok)
            let deliveryId = try #require(response.json["deliveryId"]?.stringValue)
            let (stored, failure) = try await components.database!.pool.read { db in
                (
                    try Data.fetchOne(db, sql: "SELECT body FROM deliveries WHERE id = ?", arguments: [deliveryId]),
                    try String.fetchOne(db, sql: "SELECT data FROM events WHERE type = 'delivery.processing_failed'")
                )
            }
            #expect(stored == body)
            let data = try #require(failure.flatMap(JSONValue.parse))
            #expect(data["deliveryId"] == .string(deliveryId))
            #expect(try await components.history.verify(anchorKey: nil) > 0)
        }
    }

    @Test("a report whose signal cannot be processed is still stored, and the failure names it in the history")
    func unprocessableSignalIsKept() async throws {
        let standby = TestStandby()
        try await standby.run { client, components in
            // A deployment state this build cannot read: deciding fails, for this and every signal.
            try await components.database!.pool.write { db in
                try db.execute(
                    sql:
                        "INSERT INTO deployment_state (deployment_id, state, updated_at) VALUES ('foundry-prod', 'not json', ?)",
                    arguments: [Timestamp.format(standby.time.now())])
            }
            let response = try await standby.report(client, "eastus-hub", "failure", at: 0)
            #expect(response.status == .ok)
            let reportId = try #require(response.json["reports"]?.arrayValue?.first?["id"]?.stringValue)
            let (stored, failure) = try await components.database!.pool.read { db in
                (
                    try Int.fetchOne(db, sql: "SELECT count(*) FROM health_reports WHERE id = ?", arguments: [reportId])
                        ?? 0,
                    try String.fetchOne(db, sql: "SELECT data FROM events WHERE type = 'signal.processing_failed'")
                )
            }
            #expect(stored == 1)
            let data = try #require(failure.flatMap(JSONValue.parse))
            #expect(data["inputs"] == .strings(["report:\(reportId)"]))
            #expect(data["error"]?.stringValue?.isEmpty == false)
            #expect(try await components.history.verify(anchorKey: nil) > 0)
        }
    }
}
