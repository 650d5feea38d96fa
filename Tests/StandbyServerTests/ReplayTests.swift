import ConfigReading
import Foundation
import HTTPTypes
import HummingbirdTesting
import StandbyApp
import StandbyCore
import StandbyPrimitives
import StandbyServer
import StandbyStore
import StandbyTestSupport
import Testing

@Suite("Replay: a policy re-run on the recorded history")
struct ReplayTests {
    /// Replays the history of `components` with `topology` on a scratch store.
    func replay(_ components: StandbyComponents, topology: Topology, folder: TemporaryFolder) async throws
        -> ReplayReport
    {
        let database = try StandbyDatabase(
            settings: DatabaseSettings(path: folder.path("replay-\(UUID().uuidString).sqlite"), synchronous: .off))
        try database.migrate()
        let scratch = ControlPlane(store: SQLiteControlStore(database: database), topology: topology)
        return try await Replayer(
            history: components.history, recordedStore: components.store, alerts: components.alerts,
            scratch: scratch, scratchHistory: EventHistory(database: database), settings: ReplaySettings()
        ).run()
    }

    @Test(
        "the live policy reproduces the recorded decisions exactly (a failover, its acknowledgement, an automatic failback); a stricter threshold removes the failover"
    )
    func liveReproducesStricterRemoves() async throws {
        var configured = TestStandby()
        configured.deploymentsYAML = configured.deploymentsYAML.replacingOccurrences(
            of: "    policy:\n",
            with:
                "    policy:\n      recoveryThreshold: 1\n      cooldown: 1m\n      failback: { mode: automatic, stableFor: 2m }\n"
        )
        let standby = configured
        try await standby.run { client, components in
            for offset: TimeInterval in [0, 10, 20] {
                try await standby.report(client, "eastus-hub", "failure", at: offset)
            }
            let event = try #require(try await client.failoverEvents().first)
            standby.time.set(TestStandby.start.addingTimeInterval(40))
            for command in event["commands"]?.arrayValue ?? [] {
                let id = try #require(command["id"]?.stringValue)
                _ = try await client.send(.post, "/v1/commands/\(id)/ack", json: #"{"outcome":"succeeded"}"#)
            }
            // East recovers and stays UP; the ticker (driven here second by second) fails back.
            for offset in stride(from: 60.0, through: 240, by: 30) {
                try await standby.report(client, "eastus-hub", "success", at: offset)
                try await standby.report(client, "westus-hub", "success", at: offset)
            }
            var now = TestStandby.start.addingTimeInterval(60)
            while now < TestStandby.start.addingTimeInterval(250) {
                try await components.controlPlane.tick(now: now)
                now = now.addingTimeInterval(1)
            }
            let recorded = try await client.failoverEvents()
            #expect(recorded.compactMap { $0["kind"]?.stringValue }.sorted() == ["failback", "failover"])

            let topology = try standby.configuration().topology
            let folder = TemporaryFolder()
            let live = try await replay(components, topology: topology, folder: folder)
            let deployment = try #require(live.deployments.first)
            #expect(deployment.recorded.map(\.kind) == ["failover", "failback"])
            #expect(deployment.replayed.map(\.kind) == ["failover", "failback"])
            #expect(deployment.differences.isEmpty, "\(deployment.differences)")
            #expect(deployment.replayed.first?.at == deployment.recorded.first?.at)

            var stricter = topology
            stricter.deployments[0].policy.failureThreshold = 5
            let candidate = try await replay(components, topology: stricter, folder: folder)
            let differences = try #require(candidate.deployments.first?.differences)
            #expect(differences.map(\.type) == ["removed", "removed"])
            #expect(differences.first?.kind == "failover" && differences.first?.fromHub == "eastus-hub")
            // The recorded history is unchanged by replaying it.
            #expect(try await client.failoverEvents().count == 2)

            // The same over HTTP, bounded, for operators.
            let range =
                #""since":"\#(Timestamp.format(TestStandby.start))","until":"\#(Timestamp.format(TestStandby.start.addingTimeInterval(300)))""#
            standby.time.set(TestStandby.start.addingTimeInterval(400))
            let overHTTP = try await client.send(
                .post, "/v1/replays", json: #"{"policy":{"failureThreshold":5},\#(range)}"#)
            #expect(overHTTP.status == .ok)
            let types = overHTTP.json["deployments"]?.arrayValue?.first?["differences"]?.arrayValue?.compactMap {
                $0["type"]?.stringValue
            }
            #expect(types == ["removed", "removed"])
            let same = try await client.send(.post, "/v1/replays", json: "{\(range)}")
            #expect(same.json["deployments"]?.arrayValue?.first?["differences"]?.arrayValue?.isEmpty == true)
            #expect(
                try await client.send(.post, "/v1/replays", json: #"{"policy":{"failureThreshold":"many"}}"#).status
                    == .unprocessableContent)
            #expect(
                try await client.send(.post, "/v1/replays", json: "{}", token: TestStandby.readerToken).status
                    == .forbidden)
        }
    }

    @Test("a pause with until and a maintenance window ended early replay as they were: no differences")
    func pausesAndWindowsReplay() async throws {
        let standby = TestStandby()
        try await standby.run { client, components in
            let at = { (offset: TimeInterval) in Timestamp.format(TestStandby.start.addingTimeInterval(offset)) }
            standby.time.set(TestStandby.start)
            _ = try await client.send(
                .post, "/v1/deployments/foundry-prod/pause", json: #"{"reason":"freeze","until":"\#(at(60))"}"#)
            let window = try await client.send(
                .post, "/v1/maintenance-windows",
                json:
                    #"{"deployment":"foundry-prod","hubs":["eastus-hub"],"startsAt":"\#(at(0))","endsAt":"\#(at(3600))","reason":"patching"}"#
            ).json
            var now = TestStandby.start
            for offset: TimeInterval in [10, 20, 30, 70, 100, 130, 160] {
                // Time passes as the ticker makes it pass, up to the report.
                while now < TestStandby.start.addingTimeInterval(offset) {
                    try await components.controlPlane.tick(now: now)
                    now = now.addingTimeInterval(1)
                }
                try await standby.report(client, "eastus-hub", "failure", at: offset)
                if offset == 130 {
                    let id = try #require(window["id"]?.stringValue)
                    _ = try await client.execute(
                        uri: "/v1/maintenance-windows/\(id)", method: .delete,
                        headers: [.authorization: "Bearer \(TestStandby.operatorToken)"])
                }
            }
            // Paused until 60, then held by the window until it was ended at 130: one failover at the next tick.
            let recorded = try await client.failoverEvents()
            #expect(recorded.count == 1)
            let report = try await replay(
                components, topology: try standby.configuration().topology, folder: TemporaryFolder())
            let deployment = try #require(report.deployments.first)
            #expect(deployment.replayed.count == 1)
            #expect(deployment.differences.isEmpty, "\(deployment.differences)")
        }
    }

    @Test("a candidate overlays the config: policy merges into every deployment, deployments replace them")
    func overlay() throws {
        let base = """
            server: { port: 8080 }
            deployments:
              - id: prod
                pattern: active-passive
                hubs: [{ id: east, region: eastus, role: primary }, { id: west, region: westus, role: secondary }]
                policy: { failureThreshold: 3 }
            maintenance:
              windows:
                - { name: noon, deployment: prod, weekly: { days: [monday], start: 12:00, end: 14:00 } }
            """
        let merged = try ConfigFile.overlay(
            base: base, candidate: "policy: { failureThreshold: 5 }", candidateFile: "candidate.yaml")
        let configuration = try ConfigLoader.parse(merged, environment: [:])
        let policy = try #require(configuration.topology.deployment("prod")?.policy)
        #expect(policy.failureThreshold == 5)
        // A time of day stays the text it was (no YAML 1.1 sexagesimal number).
        #expect(configuration.maintenance.recurring.first?.start == 12 * 60)
        #expect(throws: ConfigError.self) {
            try ConfigFile.overlay(base: base, candidate: "server: { port: 1 }", candidateFile: "candidate.yaml")
        }
    }
}
