import Foundation
import Hummingbird
import HummingbirdTesting
import StandbyApp
import StandbyPrimitives
import StandbyServer
import Testing

@Suite("The cluster view")
struct ClusterTests {
    @Test("on SQLite: one instance, named as configured, which leads; readers may look, others may not")
    func embeddedCluster() async throws {
        var standby = TestStandby()
        standby.extraYAML = """
            cluster: { instance: standby-westeurope, region: westeurope, url: "https://standby-weu.example.net" }
            """
        let configured = standby
        try await configured.run { client, _ in
            let response = try await client.get("/v1/cluster")
            #expect(response.status == .ok)
            let cluster = response.json
            #expect(cluster["backend"] == .string("sqlite"))
            let instances = cluster["instances"]?.arrayValue ?? []
            #expect(instances.count == 1)
            let instance = try #require(instances.first)
            #expect(instance["id"] == .string("standby-westeurope"))
            #expect(instance["region"] == .string("westeurope"))
            #expect(instance["url"] == .string("https://standby-weu.example.net"))
            #expect(instance["version"] == .string(StandbyVersion.current))
            #expect(instance["leader"] == .bool(true))
            #expect(instance["startedAt"]?.stringValue.flatMap(Timestamp.parse) != nil)
            #expect(instance["lastSeenAt"]?.stringValue.flatMap(Timestamp.parse) != nil)
            #expect(cluster["leader"]?["instance"] == .string("standby-westeurope"))
            #expect(cluster["leader"]?["epoch"] == .number(1))
            #expect(cluster["database"]?["role"] == .string("primary"))
            #expect(cluster["database"]?["host"] == .string(configured.databasePath))
            let anonymous = try await client.execute(uri: "/v1/cluster", method: .get)
            #expect(anonymous.status == .unauthorized)
        }
    }

    @Test("by default the instance is named by host name and port; a bad cluster.url is named by its key")
    func defaultsAndProblems() throws {
        let standby = TestStandby()
        let configuration = try standby.configuration()
        #expect(
            configuration.cluster.instanceId(port: configuration.server.port)
                == "\(ProcessInfo.processInfo.hostName):\(configuration.server.port)")
        var broken = TestStandby()
        broken.extraYAML = "cluster: { url: \"not a url\", instance: \"\" }"
        #expect {
            try broken.configuration()
        } throws: { error in
            let text = String(describing: error)
            return text.contains("cluster.url") && text.contains("cluster.instance")
        }
    }
}
