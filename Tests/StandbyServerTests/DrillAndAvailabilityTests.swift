import Foundation
import HTTPTypes
import HummingbirdTesting
import StandbyApp
import StandbyCore
import StandbyPrimitives
import StandbyServer
import StandbyTestSupport
import Testing

@Suite("Drills and the availability report over HTTP")
struct DrillAndAvailabilityTests {
    func healthy(_ standby: TestStandby, _ client: any TestClientProtocol, at offset: TimeInterval) async throws {
        for hub in ["eastus-hub", "westus-hub"] {
            try await standby.report(client, hub, "success", at: offset)
        }
    }

    func acknowledgeAll(_ client: any TestClientProtocol, event id: String) async throws {
        let event = try await client.get("/v1/failover-events/\(id)").json
        for command in event["commands"]?.arrayValue ?? [] {
            let commandId = try #require(command["id"]?.stringValue)
            let ack = try await client.send(.post, "/v1/commands/\(commandId)/ack", json: #"{"outcome":"succeeded"}"#)
            #expect(ack.status == .ok)
        }
    }

    func at(_ offset: TimeInterval) -> Date { TestStandby.start.addingTimeInterval(offset) }

    @Test("a drill from start to automatic failback: held after acknowledgement, then back, with its measured times")
    func drillRunsItsCourse() async throws {
        let standby = TestStandby()
        try await standby.run { client, components in
            try await healthy(standby, client, at: 0)
            let started = try await client.send(
                .post, "/v1/deployments/foundry-prod/drills", json: #"{"reason":"quarterly DR test","holdFor":"10m"}"#)
            #expect(started.status == .created)
            let drill = started.json
            let id = try #require(drill["id"]?.stringValue)
            #expect(drill["status"]?.stringValue == "running")
            #expect(drill["phase"]?.stringValue == "failing_over")
            #expect(drill["fromHub"]?.stringValue == "eastus-hub" && drill["toHub"]?.stringValue == "westus-hub")
            let failoverId = try #require(drill["failoverEventId"]?.stringValue)
            #expect(try await client.deployment()["serving"]?.arrayValue == [.string("westus-hub")])
            // A second drill, or a drill while one runs, is refused.
            let second = try await client.send(
                .post, "/v1/deployments/foundry-prod/drills", json: #"{"reason":"again"}"#)
            #expect(second.status == .conflict)

            standby.time.set(at(30))
            try await acknowledgeAll(client, event: failoverId)
            let holding = try await client.get("/v1/drills/\(id)").json
            #expect(holding["phase"]?.stringValue == "holding")
            #expect(holding["recoverySeconds"]?.doubleValue == 30)
            #expect(holding["holdUntil"]?.stringValue == Timestamp.format(at(630)))

            // The hold is not over yet; then it is and the engine fails back.
            try await components.controlPlane.tick(now: at(629))
            #expect(try await client.get("/v1/drills/\(id)").json["phase"]?.stringValue == "holding")
            standby.time.set(at(630))
            try await components.controlPlane.tick(now: at(630))
            let failingBack = try await client.get("/v1/drills/\(id)").json
            #expect(failingBack["phase"]?.stringValue == "failing_back")
            let failbackId = try #require(failingBack["failbackEventId"]?.stringValue)
            #expect(try await client.deployment()["serving"]?.arrayValue == [.string("eastus-hub")])
            let failback = try await client.get("/v1/failover-events/\(failbackId)").json
            #expect(failback["kind"]?.stringValue == "failback" && failback["trigger"]?.stringValue == "drill")

            standby.time.set(at(642))
            try await acknowledgeAll(client, event: failbackId)
            let done = try await client.get("/v1/drills/\(id)").json
            #expect(done["status"]?.stringValue == "completed")
            #expect(done["failbackRecoverySeconds"]?.doubleValue == 12)
            #expect(done["finishedAt"]?.stringValue == Timestamp.format(at(642)))
            #expect(done["abortReason"] == nil)
            let listed = try await client.get("/v1/drills?deployment=foundry-prod").json["items"]?.arrayValue ?? []
            #expect(listed.map { $0["id"]?.stringValue } == [id])
            let events = try await client.get(
                "/v1/events?type=drill.started,drill.holding,drill.failing_back,drill.finished"
            )
            .json["items"]?.arrayValue?.compactMap { $0["type"]?.stringValue }
            #expect(events == ["drill.started", "drill.holding", "drill.failing_back", "drill.finished"])
            // A drill is no incident: the availability report counts no failover and no downtime.
            let report = try await client.get(
                "/v1/deployments/foundry-prod/availability?since=\(Timestamp.format(at(0)))&until=\(Timestamp.format(at(700)))"
            ).json
            #expect(report["failovers"]?.doubleValue == 0)
            #expect(report["downtimeSeconds"]?.doubleValue == 0)
        }
    }

    @Test("an operator aborts a drill: it fails back at once and ends aborted; refused when not healthy")
    func abortAndRefusal() async throws {
        let standby = TestStandby()
        let sick = TestStandby()
        try await sick.run { client, _ in
            // The secondary is DOWN: no drill onto it.
            for offset: TimeInterval in [0, 1, 2] {
                try await sick.report(client, "westus-hub", "failure", at: offset)
            }
            let unhealthy = try await client.send(
                .post, "/v1/deployments/foundry-prod/drills", json: #"{"reason":"too early"}"#)
            #expect(unhealthy.status == .conflict)
            #expect(unhealthy.json["detail"]?.stringValue?.contains("not healthy: westus-hub is down") == true)
        }
        try await standby.run { client, _ in
            let reader = try await client.send(
                .post, "/v1/deployments/foundry-prod/drills", json: #"{"reason":"x"}"#, token: TestStandby.readerToken)
            #expect(reader.status == .forbidden)
            let badHold = try await client.send(
                .post, "/v1/deployments/foundry-prod/drills", json: #"{"reason":"x","holdFor":"forever"}"#)
            #expect(badHold.status == .unprocessableContent)

            try await healthy(standby, client, at: 0)
            let drill = try await client.send(
                .post, "/v1/deployments/foundry-prod/drills", json: #"{"reason":"dr test"}"#
            )
            .json
            let id = try #require(drill["id"]?.stringValue)
            standby.time.set(at(5))
            let aborted = try await client.send(.post, "/v1/drills/\(id)/abort", json: #"{"reason":"customer demo"}"#)
            #expect(aborted.status == .ok)
            #expect(aborted.json["phase"]?.stringValue == "failing_back")
            #expect(aborted.json["abortReason"]?.stringValue == "aborted by app-layer: customer demo")
            // The drill's failover, still waiting for acknowledgement, is superseded by the failback.
            let failover = try await client.get("/v1/failover-events/\(drill["failoverEventId"]!.stringValue!)").json
            #expect(failover["status"]?.stringValue == "superseded")
            let failbackId = try #require(aborted.json["failbackEventId"]?.stringValue)
            try await acknowledgeAll(client, event: failbackId)
            let done = try await client.get("/v1/drills/\(id)").json
            #expect(done["status"]?.stringValue == "aborted")
            #expect(try await client.send(.post, "/v1/drills/\(id)/abort", json: "{}").status == .conflict)
            #expect(try await client.get("/v1/drills/unknown").status == .notFound)
        }
    }

    @Test("availability over a history with a known outage, to the second")
    func availabilityToTheSecond() async throws {
        let standby = TestStandby()
        try await standby.run { client, _ in
            try await healthy(standby, client, at: 0)
            standby.time.set(at(50))
            let pause = try await client.send(
                .post, "/v1/deployments/foundry-prod/pause", json: #"{"reason":"change freeze"}"#)
            #expect(pause.status == .ok)
            // eastus-hub is DOWN at 120 (third failure within the window); automation is paused, so
            // it keeps serving while DOWN until an operator resumes at 300 and the failover is decided.
            // The probe keeps failing (a report every 30s keeps the source from going stale).
            for offset: TimeInterval in [100, 110, 120, 150, 180, 210, 240, 270, 300] {
                try await standby.report(client, "eastus-hub", "failure", at: offset)
            }
            standby.time.set(at(300))
            #expect(
                try await client.send(.post, "/v1/deployments/foundry-prod/resume", json: #"{"reason":"freeze over"}"#)
                    .status == .ok)
            let event = try #require(try await client.failoverEvents().first)
            standby.time.set(at(330))
            try await acknowledgeAll(client, event: try #require(event["id"]?.stringValue))
            standby.time.set(at(3600))
            let report = try await client.get(
                "/v1/deployments/foundry-prod/availability?since=\(Timestamp.format(at(0)))&until=\(Timestamp.format(at(3600)))"
            ).json
            #expect(report["downtimeSeconds"]?.doubleValue == 180)
            #expect(report["availability"]?.doubleValue == 1 - 180.0 / 3600)
            #expect(report["target"]?.doubleValue == 0.9995)
            #expect(report["met"]?.boolValue == false)
            #expect(report["failovers"]?.doubleValue == 1)
            #expect(report["detection"]?["maxSeconds"]?.doubleValue == 200)
            #expect(report["recovery"]?["meanSeconds"]?.doubleValue == 30)
            let periods = try #require(report["downPeriods"]?.arrayValue)
            #expect(periods.count == 1)
            #expect(periods.first?["from"]?.stringValue == Timestamp.format(at(120)))
            #expect(periods.first?["to"]?.stringValue == Timestamp.format(at(300)))
            #expect(periods.first?["reason"]?.stringValue == "eastus-hub served and was DOWN")
            let hubs = try #require(report["hubs"]?.arrayValue)
            #expect(hubs.first { $0["hub"]?.stringValue == "eastus-hub" }?["downSeconds"]?.doubleValue == 3480)
            // A window that ends before the outage sees none.
            let before = try await client.get(
                "/v1/deployments/foundry-prod/availability?since=\(Timestamp.format(at(0)))&until=\(Timestamp.format(at(100)))"
            ).json
            #expect(before["availability"]?.doubleValue == 1)
            #expect(try await client.get("/v1/deployments/foundry-prod/availability?since=nope").status == .badRequest)
        }
    }
}
