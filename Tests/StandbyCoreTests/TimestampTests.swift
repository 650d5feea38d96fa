import Foundation
import StandbyCore
import StandbyPrimitives
import Testing

@Suite("Timestamps")
struct TimestampTests {
    @Test(
        "accepts the forms Azure sends",
        arguments: [
            ("2026-11-28T10:00:00Z", 1_795_860_000.0),
            ("2026-11-28T10:00:00", 1_795_860_000.0),
            ("2026-11-28T10:00:00.5Z", 1_795_860_000.5),
            ("2026-11-28T10:00:00.1234567Z", 1_795_860_000.1234567),
            ("2026-11-28T11:00:00+01:00", 1_795_860_000.0),
            ("2026-11-28T09:30:00-0030", 1_795_860_000.0),
            ("2026-11-28 10:00:00z", 1_795_860_000.0),
            ("2026-11-28T10:00Z", 1_795_860_000.0),
        ])
    func parses(_ text: String, _ seconds: Double) throws {
        let date = try #require(Timestamp.parse(text))
        #expect(abs(date.timeIntervalSince1970 - seconds) < 0.000_001)
    }

    @Test(
        "rejects what is not a timestamp",
        arguments: [
            "", "yesterday", "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z", "2026-11-28T10:00:00Zjunk",
            "3/22/2019 1:36:31 PM",
        ])
    func rejects(_ text: String) {
        #expect(Timestamp.parse(text) == nil)
    }

    @Test("formats UTC with milliseconds, and round-trips")
    func formats() throws {
        let date = try #require(Timestamp.parse("2026-11-28T10:00:00.1239Z"))
        #expect(Timestamp.format(date) == "2026-11-28T10:00:00.123Z")
        #expect(Timestamp.format(Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00.000Z")
        #expect(Timestamp.format(Date(timeIntervalSince1970: 951_782_400)) == "2000-02-29T00:00:00.000Z")
    }
}

@Suite("Resource IDs and hub matching")
struct TopologyTests {
    let topology = Topology(deployments: [
        DeploymentDefinition(
            id: "prod", pattern: .activePassive,
            hubs: [
                HubDefinition(
                    id: "east", region: "eastus", regionName: "East US", role: .primary, endpoint: "",
                    resources: [
                        ResourceID(
                            "/subscriptions/1/resourceGroups/ai-east/providers/Microsoft.MachineLearningServices/workspaces/hub"
                        )
                    ]),
                HubDefinition(
                    id: "west", region: "westus", regionName: "West US", role: .secondary, endpoint: "", resources: []),
            ],
            policy: {
                var policy = Policy()
                policy.alerts.serviceHealthServices = ["Azure Machine Learning"]
                return policy
            }())
    ])

    @Test("ARM IDs match without case, and child resources belong to their parent")
    func matchesChildren() {
        let alert = NormalizedAlert(
            key: "k", schema: .common, kind: .metric, condition: .fired,
            targetResourceIDs: [
                ResourceID(
                    "/SUBSCRIPTIONS/1/resourcegroups/AI-EAST/providers/microsoft.machinelearningservices/workspaces/HUB/onlineEndpoints/chat"
                )
            ])
        #expect(topology.hubsConcerned(by: alert) == [HubReference(deploymentId: "prod", hubId: "east")])
        let sibling = NormalizedAlert(
            key: "k", schema: .common, kind: .metric, condition: .fired,
            targetResourceIDs: [
                ResourceID(
                    "/subscriptions/1/resourceGroups/ai-east/providers/Microsoft.MachineLearningServices/workspaces/hub2"
                )
            ])
        #expect(topology.hubsConcerned(by: sibling).isEmpty)
    }

    @Test("Service Health concerns hubs by region display name and configured service")
    func serviceHealthByRegion() {
        func alert(_ service: String, _ regions: [String]) -> NormalizedAlert {
            NormalizedAlert(
                key: "k", schema: .common, kind: .serviceHealth, condition: .fired,
                serviceHealth: ServiceHealthDetails(
                    incidentType: "Incident", trackingId: "T", stage: "Active", title: nil, communicationId: nil,
                    impactedServices: [ImpactedService(service: service, regions: regions)]))
        }
        #expect(
            topology.hubsConcerned(by: alert("Azure Machine Learning", ["East US"])) == [
                HubReference(deploymentId: "prod", hubId: "east")
            ])
        #expect(topology.hubsConcerned(by: alert("azure machine learning", ["eastus", "West US"])).count == 2)
        #expect(topology.hubsConcerned(by: alert("Azure SQL Database", ["East US"])).isEmpty)
    }
}

@Suite("Time-ordered IDs")
struct TimeOrderedIDTests {
    @Test("UUID version 7: lower-case 8-4-4-4-12, version 7, RFC variant, ordered by millisecond")
    func format() throws {
        let start = Date(timeIntervalSince1970: 1_795_000_000)
        var previous = ""
        for step in 0..<500 {
            let id = TimeOrderedID.make(at: start.addingTimeInterval(Double(step) * 0.001))
            let parts = id.split(separator: "-").map(String.init)
            #expect(parts.map(\.count) == [8, 4, 4, 4, 12])
            #expect(id == id.lowercased())
            #expect(UUID(uuidString: id) != nil)
            #expect(parts[2].first == "7")
            #expect("89ab".contains(parts[3].first!))
            #expect(id > previous)
            previous = id
        }
        let millisecondHex = String(UInt64(1_795_000_000_000), radix: 16)
        let first = TimeOrderedID.make(at: start).replacingOccurrences(of: "-", with: "")
        #expect(first.hasPrefix(String(repeating: "0", count: 12 - millisecondHex.count) + millisecondHex))
    }
}

@Suite("Resource IDs")
struct ResourceIDTests {
    @Test("compared without case, surrounding whitespace or trailing slashes")
    func normalization() {
        let id = ResourceID(" \t/SUBSCRIPTIONS/1/resourceGroups/AI/providers/X/workspaces/Hub//\n")
        #expect(id.normalized == "/subscriptions/1/resourcegroups/ai/providers/x/workspaces/hub")
        #expect(id == ResourceID("/subscriptions/1/resourcegroups/ai/providers/x/workspaces/hub"))
        #expect(
            id.contains(
                ResourceID("/subscriptions/1/resourcegroups/ai/providers/x/workspaces/hub/onlineEndpoints/chat")))
        #expect(!id.contains(ResourceID("/subscriptions/1/resourcegroups/ai/providers/x/workspaces/hub2")))
        #expect(ResourceID("   ").normalized == "")
        #expect(ResourceID("/").normalized == "/")
    }
}

@Suite("Timestamp formatting")
struct TimestampFormattingTests {
    @Test("UTC ISO-8601 with milliseconds; date and time as Foundation writes them, for dates across centuries")
    func matchesFoundation() {
        var style = Date.ISO8601FormatStyle()
        style.timeZone = TimeZone(identifier: "UTC")!
        var milliseconds: [Int64] = [0, 1_795_860_000_999, 951_782_400_000, -1]
        milliseconds += (0..<500).map { _ in Int64.random(in: -2_000_000_000_000...4_000_000_000_000) }
        for total in milliseconds {
            let seconds = total >= 0 ? total / 1000 : (total - 999) / 1000
            let millis = total - seconds * 1000
            let whole = Date(timeIntervalSince1970: Double(seconds)).formatted(style)
            let expected =
                whole.dropLast() + "." + String(repeating: "0", count: 3 - String(millis).count) + String(millis) + "Z"
            let date = Date(timeIntervalSince1970: Double(seconds) + Double(millis) / 1000 + 0.0001)
            #expect(Timestamp.format(date) == expected)
            #expect(Timestamp.parse(Timestamp.format(date)).map(Timestamp.format) == Timestamp.format(date))
        }
    }
}
