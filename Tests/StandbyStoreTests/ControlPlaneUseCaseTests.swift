import Foundation
import StandbyApp
import StandbyCore
import StandbyPrimitives
import StandbyStore
import StandbyTestSupport
import Testing

/// The use cases on a real store, without HTTP: what a signal causes, as the API would show it.
@Suite("Use cases: the control plane on a store")
struct ControlPlaneUseCaseTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    let deployment = DeploymentDefinition(
        id: "prod", pattern: .activePassive,
        hubs: [
            HubDefinition(
                id: "east", region: "eastus", regionName: "East US", role: .primary, endpoint: "", resources: []),
            HubDefinition(
                id: "west", region: "westus", regionName: "West US", role: .secondary, endpoint: "", resources: []),
        ], policy: Policy())

    func failure(_ id: String, at: Date) -> HealthReportInput {
        HealthReportInput(
            id: id, deploymentId: "prod", hubId: "east", source: "probe", outcome: .failure, observedAt: at,
            latencyMs: nil, statusCode: 503, detail: nil)
    }

    func plane(_ kind: StoreUnderTest) async throws -> (ControlPlane, AnyObject) {
        let (store, keepAlive) = try await kind.make()
        return (ControlPlane(store: store, topology: Topology(deployments: [deployment])), keepAlive)
    }

    @Test(
        "three failures within five minutes: one failover, its commands in order; the same report again changes nothing",
        arguments: StoreUnderTest.allCases)
    func threeFailuresFailOver(_ kind: StoreUnderTest) async throws {
        let (plane, keepAlive) = try await plane(kind)
        defer { withExtendedLifetime(keepAlive) {} }
        for index in 0..<2 {
            let at = t0.addingTimeInterval(Double(index) * 60)
            _ = try await plane.recordReports([failure("r\(index)", at: at)], actor: "probe", now: at)
        }
        #expect(try await plane.failoverEvents(deployment: "prod", page: PageRequest()).items.isEmpty)
        let third = t0.addingTimeInterval(120)
        let receipts = try await plane.recordReports([failure("r2", at: third)], actor: "probe", now: third)
        #expect(receipts.map(\.status) == ["accepted"])
        let events = try await plane.failoverEvents(deployment: "prod", page: PageRequest()).items
        let event = try #require(events.first)
        #expect(events.count == 1)
        #expect(event.kind == "failover")
        #expect(event.fromHub == "east")
        #expect(event.toHub == "west")
        #expect(event.commands.map(\.kind) == ["scale_compute", "route_traffic"])
        #expect(event.commands.allSatisfy { $0.status == .pending })
        let view = try #require(try await plane.deployment(id: "prod", now: third))
        #expect(view.serving == ["west"])
        #expect(view.automation.openFailoverEventId == event.id)

        let again = try await plane.recordReports([failure("r2-again", at: third)], actor: "probe", now: third)
        #expect(again.map(\.status) == ["duplicate"])
        #expect(again.map(\.id) == ["r2"])
        #expect(try await plane.failoverEvents(deployment: "prod", page: PageRequest()).items.count == 1)
    }

    @Test(
        "acknowledging every command completes the event; the same answer again is a no-op, another is a conflict",
        arguments: StoreUnderTest.allCases)
    func acknowledgementsSettleTheEvent(_ kind: StoreUnderTest) async throws {
        let (plane, keepAlive) = try await plane(kind)
        defer { withExtendedLifetime(keepAlive) {} }
        for index in 0..<3 {
            let at = t0.addingTimeInterval(Double(index) * 60)
            _ = try await plane.recordReports([failure("r\(index)", at: at)], actor: "probe", now: at)
        }
        let event = try #require(try await plane.failoverEvents(deployment: "prod", page: PageRequest()).items.first)
        let now = t0.addingTimeInterval(300)
        for command in event.commands {
            let acknowledged = try await plane.acknowledge(
                commandId: command.id, outcome: .succeeded, detail: nil, actor: "app", now: now)
            #expect(acknowledged.status == .succeeded)
        }
        #expect(try await plane.failoverEvent(id: event.id)?.status == .completed)
        let first = try #require(event.commands.first)
        let repeated = try await plane.acknowledge(
            commandId: first.id, outcome: .succeeded, detail: nil, actor: "app", now: now)
        #expect(repeated.status == .succeeded)
        await #expect(throws: StoreError.self) {
            try await plane.acknowledge(commandId: first.id, outcome: .failed, detail: nil, actor: "app", now: now)
        }
        let view = try #require(try await plane.deployment(id: "prod", now: now))
        #expect(view.automation.openFailoverEventId == nil)
    }

    @Test("a delivery that is not an alert is stored raw and causes nothing", arguments: StoreUnderTest.allCases)
    func unrecognisedDeliveryIsKept(_ kind: StoreUnderTest) async throws {
        let (plane, keepAlive) = try await plane(kind)
        defer { withExtendedLifetime(keepAlive) {} }
        let delivery = IncomingDelivery(
            id: "d1", receivedAt: t0, remoteAddress: "127.0.0.1", contentType: "application/json",
            body: Data(#"{"hello":"world"}"#.utf8))
        let result = try await plane.ingest(delivery, content: .unrecognized(reason: "no schemaId"))
        #expect(result.outcome == .unrecognized)
        #expect(result.deliveryId == "d1")
        #expect(try await plane.failoverEvents(deployment: nil, page: PageRequest()).items.isEmpty)
        let view = try #require(try await plane.deployment(id: "prod", now: t0))
        #expect(view.hubs.allSatisfy { $0.sources.isEmpty })
    }
}
