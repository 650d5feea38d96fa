import Foundation
import HTTPTypes
import HummingbirdTesting
import StandbyApp
import StandbyCore
import StandbyPrimitives
import StandbyServer
import StandbyTestSupport
import Testing

@Suite("Readiness of the secondary: pushed reports")
struct ReadinessTests {
    func readiness(_ client: any TestClientProtocol, hub: String) async throws -> [String: String] {
        let hubs = try await client.deployment()["hubs"]?.arrayValue ?? []
        let checks = hubs.first { $0["id"]?.stringValue == hub }?["readiness"]?.arrayValue ?? []
        return Dictionary(
            uniqueKeysWithValues: checks.compactMap { check in
                check["check"]?.stringValue.flatMap { name in check["status"]?.stringValue.map { (name, $0) } }
            })
    }

    func push(_ client: any TestClientProtocol, _ reports: [(String, String)], hub: String = "westus-hub", at: Date)
        async throws -> TestResponse
    {
        let items = reports.map {
            #"{"hub":"\#(hub)","check":"\#($0.0)","status":"\#($0.1)","detail":"from the app layer","observedAt":"\#(Timestamp.format(at))"}"#
        }
        return try await client.send(
            .post, "/v1/readiness-reports", json: #"{"reports":[\#(items.joined(separator: ","))]}"#,
            token: TestStandby.reporterToken)
    }

    @Test("pushed reports change the deployment view; the same report again is a duplicate; bad ones name their field")
    func reportsChangeTheView() async throws {
        let standby = TestStandby()
        try await standby.run { client, _ in
            #expect(try await readiness(client, hub: "westus-hub").values.allSatisfy { $0 == "unknown" })
            let now = standby.time.now()
            let first = try await push(
                client,
                [
                    ("storage_replication", "ready"), ("registry_replication", "ready"), ("compute_quota", "not_ready"),
                    ("endpoints", "ready"),
                ], at: now)
            #expect(first.status == .ok)
            #expect(first.json["accepted"]?.doubleValue == 4)
            let again = try await push(client, [("compute_quota", "not_ready")], at: now)
            #expect(again.json["duplicates"]?.doubleValue == 1)
            let view = try await readiness(client, hub: "westus-hub")
            #expect(view["compute_quota"] == "not_ready" && view["storage_replication"] == "ready")
            let changes = try await client.get("/v1/events?type=readiness.changed").json["items"]?.arrayValue ?? []
            #expect(changes.count == 4)
            // An older report does not overwrite a newer one.
            _ = try await push(client, [("compute_quota", "ready")], at: now.addingTimeInterval(-60))
            #expect(try await readiness(client, hub: "westus-hub")["compute_quota"] == "not_ready")

            let unknownCheck = try await client.send(
                .post, "/v1/readiness-reports",
                json:
                    #"{"hub":"westus-hub","check":"vibes","status":"ready","observedAt":"\#(Timestamp.format(now))"}"#,
                token: TestStandby.reporterToken)
            #expect(unknownCheck.status == .unprocessableContent)
            #expect(unknownCheck.json["field"]?.stringValue == "check")
            let unknownHub = try await client.send(
                .post, "/v1/readiness-reports",
                json:
                    #"{"reports":[{"hub":"nowhere","check":"endpoints","status":"ready","observedAt":"\#(Timestamp.format(now))"}]}"#,
                token: TestStandby.reporterToken)
            #expect(unknownHub.json["field"]?.stringValue == "reports[0].hub")
            #expect(
                try await client.send(
                    .post, "/v1/readiness-reports", json: "{}", token: TestStandby.readerToken
                ).status == .forbidden)
            let metrics = try await client.get("/metrics").text
            #expect(
                metrics.contains(
                    #"standby_hub_readiness{deployment="foundry-prod",hub="westus-hub",check="compute_quota",status="not_ready"} 1"#
                ))
        }
    }

    @Test(
        "readiness is stored with the hub's state: it outlives a later health report and a restart, on either store",
        arguments: [false, true])
    func readinessIsDurable(postgres: Bool) async throws {
        var configured = TestStandby()
        if postgres { configured.databaseURL = try await PostgresTestServer.freshDatabaseURL() }
        let standby = configured
        try await standby.run { client, _ in
            let pushed = try await push(
                client, [("compute_quota", "not_ready"), ("endpoints", "ready")], at: standby.time.now())
            #expect(pushed.json["accepted"]?.doubleValue == 2)
            // A signal on the same hub saves its state again.
            try await standby.report(client, "westus-hub", "success", at: 0)
            let view = try await readiness(client, hub: "westus-hub")
            #expect(view["compute_quota"] == "not_ready" && view["endpoints"] == "ready")
        }
        // A new process reads the state from the database, with nothing cached.
        try await standby.run { client, _ in
            let view = try await readiness(client, hub: "westus-hub")
            #expect(view["compute_quota"] == "not_ready" && view["endpoints"] == "ready")
        }
    }

    @Test("requireReadyTarget holds the failover while the target is not ready, then fails over once it is")
    func requireReadyTargetHolds() async throws {
        var configured = TestStandby()
        configured.deploymentsYAML = configured.deploymentsYAML.replacingOccurrences(
            of: "    policy:\n", with: "    policy:\n      requireReadyTarget: true\n")
        let standby = configured
        try await standby.run { client, components in
            _ = try await push(
                client,
                [
                    ("storage_replication", "not_ready"), ("registry_replication", "ready"), ("compute_quota", "ready"),
                    ("endpoints", "ready"),
                ], at: standby.time.now())
            for offset: TimeInterval in [0, 10, 20] {
                try await standby.report(client, "eastus-hub", "failure", at: offset)
            }
            #expect(try await client.failoverEvents().isEmpty)
            let view = try await client.deployment()
            #expect(view["automation"]?["state"]?.stringValue == "held")
            #expect(
                view["automation"]?["reason"]?.stringValue?.contains("target not ready (storage_replication not_ready)")
                    == true)
            _ = try await push(client, [("storage_replication", "ready")], at: standby.time.now())
            let events = try await client.failoverEvents()
            #expect(events.count == 1)
            #expect(events.first?["reason"]?.stringValue?.contains("westus-hub readiness: ready") == true)
            _ = components
        }
    }

    @Test("advisory by default: the failover happens to a not-ready target, with its readiness in the reason")
    func advisoryByDefault() async throws {
        let standby = TestStandby()
        try await standby.run { client, _ in
            _ = try await push(client, [("compute_quota", "not_ready")], at: standby.time.now())
            for offset: TimeInterval in [0, 10, 20] {
                try await standby.report(client, "eastus-hub", "failure", at: offset)
            }
            let event = try #require(try await client.failoverEvents().first)
            let reason = try #require(event["reason"]?.stringValue)
            #expect(reason.contains("westus-hub readiness: compute_quota not_ready"))
        }
    }
}
