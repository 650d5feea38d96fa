import Foundation
import HTTPTypes
import HummingbirdTesting
import StandbyApp
import StandbyCore
import StandbyPrimitives
import StandbyServer
import StandbyTestSupport
import Testing

/// Maintenance windows, pauses with until and the acknowledgement deadline, over HTTP.
@Suite("Scenarios: maintenance, pause until, ack deadline")
struct MaintenanceScenarioTests {
    func at(_ offset: TimeInterval) -> String { Timestamp.format(TestStandby.start.addingTimeInterval(offset)) }

    func failures(_ standby: TestStandby, _ client: any TestClientProtocol, from offset: TimeInterval) async throws {
        for step: TimeInterval in [0, 10, 20] {
            try await standby.report(client, "eastus-hub", "failure", at: offset + step)
        }
    }

    func eventTypes(_ client: any TestClientProtocol, _ types: String) async throws -> [JSONValue] {
        try await client.get("/v1/events?type=\(types)").json["items"]?.arrayValue ?? []
    }

    @Test("a maintenance window suppresses the failover (recorded with its id), then ending it releases the failover")
    func maintenanceSuppressesThenReleases() async throws {
        let standby = TestStandby()
        try await standby.run { client, components in
            standby.time.set(TestStandby.start)
            let body =
                #"{"deployment":"foundry-prod","hubs":["eastus-hub"],"startsAt":"\#(at(-60))","endsAt":"\#(at(3600))","reason":"patching eastus"}"#
            let created = try await client.send(.post, "/v1/maintenance-windows", json: body)
            #expect(created.status == .created)
            let id = try #require(created.json["id"]?.stringValue)
            #expect(created.json["active"]?.boolValue == true)
            #expect(created.json["hubs"]?.arrayValue == [.string("eastus-hub")])
            let again = try await client.send(.post, "/v1/maintenance-windows", json: body)
            #expect(again.status == .ok && again.json["id"]?.stringValue == id)
            #expect(
                try await client.send(.post, "/v1/maintenance-windows", json: body, token: TestStandby.readerToken)
                    .status == .forbidden)
            let backwards = #"{"deployment":"foundry-prod","startsAt":"\#(at(60))","endsAt":"\#(at(0))","reason":"x"}"#
            #expect(
                try await client.send(.post, "/v1/maintenance-windows", json: backwards).status == .unprocessableContent
            )
            let unknownHub =
                #"{"deployment":"foundry-prod","hubs":["nowhere"],"startsAt":"\#(at(0))","endsAt":"\#(at(60))","reason":"x"}"#
            #expect(
                try await client.send(.post, "/v1/maintenance-windows", json: unknownHub).status
                    == .unprocessableContent)

            try await components.controlPlane.tick(now: TestStandby.start)
            try await failures(standby, client, from: 1)
            #expect(try await client.failoverEvents().isEmpty)
            let view = try await client.deployment()
            #expect(view["serving"]?.arrayValue == [.string("eastus-hub")])
            #expect(view["automation"]?["maintenanceWindows"]?.arrayValue == [.string(id)])
            #expect(view["hubs"]?.arrayValue?.first?["health"]?.stringValue == "down")
            let suppressed = try await eventTypes(client, "automation.suppressed")
            #expect(suppressed.count == 1)
            #expect(suppressed.first?["data"]?["maintenanceWindowId"]?.stringValue == id)
            let active = try await client.get("/v1/maintenance-windows?deployment=foundry-prod&active=true").json
            #expect(active["items"]?.arrayValue?.compactMap { $0["id"]?.stringValue } == [id])

            standby.time.set(TestStandby.start.addingTimeInterval(30))
            let ended = try await client.execute(
                uri: "/v1/maintenance-windows/\(id)", method: .delete,
                headers: [.authorization: "Bearer \(TestStandby.operatorToken)"])
            #expect(ended.status == .ok)
            #expect(ended.json["endedAt"]?.stringValue == at(30))
            #expect(ended.json["active"]?.boolValue == false)
            try await components.controlPlane.tick(now: TestStandby.start.addingTimeInterval(31))
            let events = try await client.failoverEvents()
            #expect(events.count == 1)
            #expect(events.first?["fromHub"]?.stringValue == "eastus-hub")
            #expect(try await eventTypes(client, "maintenance.started,maintenance.ended").count == 2)
            let inactive = try await client.get("/v1/maintenance-windows?active=false").json["items"]?.arrayValue
            #expect(inactive?.compactMap { $0["id"]?.stringValue } == [id])
            #expect(try await client.get("/v1/maintenance-windows/nope").status == .notFound)
        }
    }

    @Test("a pause with until resumes by itself at that time; an until in the past or not a time is refused")
    func expiringPause() async throws {
        let standby = TestStandby()
        try await standby.run { client, components in
            standby.time.set(TestStandby.start)
            let past = try await client.send(
                .post, "/v1/deployments/foundry-prod/pause", json: #"{"reason":"x","until":"\#(at(-1))"}"#)
            #expect(past.status == .conflict)
            let garbage = try await client.send(
                .post, "/v1/deployments/foundry-prod/pause", json: #"{"reason":"x","until":"tomorrow"}"#)
            #expect(garbage.status == .unprocessableContent)
            let notPause = try await client.send(
                .post, "/v1/deployments/foundry-prod/failover", json: #"{"reason":"x","until":"\#(at(60))"}"#)
            #expect(notPause.status == .unprocessableContent)
            let paused = try await client.send(
                .post, "/v1/deployments/foundry-prod/pause", json: #"{"reason":"change freeze","until":"\#(at(60))"}"#)
            #expect(paused.status == .ok)
            #expect(paused.json["automation"]?["pausedUntil"]?.stringValue == at(60))
            try await components.controlPlane.tick(now: TestStandby.start.addingTimeInterval(59))
            #expect(try await client.deployment()["automation"]?["state"]?.stringValue == "paused")
            try await components.controlPlane.tick(now: TestStandby.start.addingTimeInterval(60))
            let view = try await client.deployment()
            #expect(view["automation"]?["state"]?.stringValue == "active")
            #expect(view["automation"]?["pausedUntil"] == nil)
            let expired = try await eventTypes(client, "automation.pause_expired")
            #expect(expired.count == 1)
            #expect(expired.first?["data"]?["pauseReason"]?.stringValue == "change freeze")
        }
    }

    @Test("commands nobody acknowledges expire at dispatch.ackDeadline; their event fails; a late ack is refused")
    func ackDeadlineExpires() async throws {
        var configured = TestStandby()
        configured.extraYAML = "dispatch: { ackDeadline: 2m }"
        let standby = configured
        try await standby.run { client, components in
            try await failures(standby, client, from: 0)
            let event = try #require(try await client.failoverEvents().first)
            let decidedAt = TestStandby.start.addingTimeInterval(20)
            #expect(
                try await components.controlPlane.expireOverdueCommands(now: decidedAt.addingTimeInterval(119)) == 0)
            #expect(
                try await components.controlPlane.expireOverdueCommands(now: decidedAt.addingTimeInterval(120)) == 2)
            let expired = try await client.commands("?status=expired")
            #expect(expired.count == 2)
            let settled = try await client.get("/v1/failover-events/\(event["id"]!.stringValue!)").json
            #expect(settled["status"]?.stringValue == "failed")
            #expect(try await client.deployment()["automation"]?["openFailoverEventId"] == nil)
            let commandId = try #require(expired.first?["id"]?.stringValue)
            let late = try await client.send(.post, "/v1/commands/\(commandId)/ack", json: #"{"outcome":"succeeded"}"#)
            #expect(late.status == .conflict)
            #expect(try await eventTypes(client, "command.expired").count == 2)
        }
    }
}
