import Foundation
import StandbyApp
import StandbyCore
import StandbyPrimitives
import StandbyServer
import Testing

/// The deploy kit cannot be run here (no Docker engine, no Azure), but every file must at least
/// parse and say what the README promises.
@Suite("Deploy kit")
struct DeployKitTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    func read(_ path: String) throws -> String {
        try String(contentsOf: Self.root.appendingPathComponent(path), encoding: .utf8)
    }

    @Test("the example configuration is valid, with and without its optional secrets")
    func exampleConfig() throws {
        let path = Self.root.appendingPathComponent("deploy/standby.example.yaml").path
        let bare = try ConfigLoader.load(file: path, environment: [:])
        #expect(bare.auth.webhookTokens.isEmpty)
        #expect(bare.server.host == "127.0.0.1")
        let webhookToken = "webhook-token-of-16+bytes"
        let full = try ConfigLoader.load(
            file: path,
            environment: [
                "STANDBY_WEBHOOK_TOKEN": webhookToken, "STANDBY_API_TOKEN": "api-token-of-16+bytes",
                "STANDBY_HOST": "0.0.0.0",
            ])
        #expect(full.auth.webhookTokens == [Secret(webhookToken)])
        #expect(full.server.host == "0.0.0.0")
        #expect(full.topology.deployments.first?.hubs.count == 2)
    }

    @Test("JSON files parse")
    func json() throws {
        for path in ["deploy/azure/main.parameters.json"] {
            #expect(throws: Never.self) { try JSONValue.decode(Data(try read(path).utf8)) }
        }
    }

    @Test("the Bicep template is balanced and declares the action group and the three alert rules")
    func bicep() throws {
        let text = try read("deploy/azure/main.bicep")
        var depth: [Character: Int] = ["{": 0, "[": 0, "(": 0]
        let closing: [Character: Character] = ["}": "{", "]": "[", ")": "("]
        var inString = false
        var previous: Character = " "
        for line in text.split(separator: "\n") where !line.trimmingCharacters(in: .whitespaces).hasPrefix("//") {
            for character in line {
                if character == "'" && previous != "\\" { inString.toggle() }
                previous = character
                guard !inString else { continue }
                if depth[character] != nil { depth[character]! += 1 }
                if let open = closing[character] {
                    depth[open]! -= 1
                    #expect(depth[open]! >= 0, "unbalanced \(character)")
                }
            }
            #expect(!inString, "unterminated string on: \(line)")
            inString = false
        }
        #expect(depth.values.allSatisfy { $0 == 0 })
        for type in [
            "Microsoft.Insights/actionGroups@", "Microsoft.Insights/metricAlerts@",
            "Microsoft.Insights/activityLogAlerts@",
        ] {
            #expect(text.contains("'\(type)"), "\(type) missing")
        }
        #expect(text.contains("useCommonAlertSchema: true"))
        #expect(text.contains("useAadAuth: useSecureWebhook"))
        #expect(text.contains("/webhooks/azure-monitor"))
        #expect(text.contains("'ServiceHealth'") && text.contains("'ResourceHealth'"))
    }

    @Test("the container image and the service unit say what they must")
    func imageAndUnit() throws {
        let dockerfile = try read("Dockerfile")
        #expect(dockerfile.components(separatedBy: "\nFROM ").count + (dockerfile.hasPrefix("FROM") ? 1 : 0) >= 3)
        #expect(dockerfile.contains("scripts/build-release.sh"))
        let releaseBuild = try read("scripts/build-release.sh")
        #expect(releaseBuild.contains("--static-swift-stdlib") && releaseBuild.contains("pack-relative-relocs"))
        #expect(dockerfile.contains("libsqlite3-0"))
        #expect(dockerfile.contains("USER standby"))
        #expect(dockerfile.contains("COPY migrations"))
        let unit = try read("deploy/systemd/standby.service")
        for directive in [
            "ExecStart=/usr/local/bin/standby serve", "NoNewPrivileges=yes", "ProtectSystem=strict",
            "KillSignal=SIGTERM", "StateDirectory=standby",
        ] {
            #expect(unit.contains(directive), "\(directive)")
        }
    }
}
