import Foundation
import Hummingbird
import HummingbirdTesting
import StandbyApp
import StandbyStore
import StandbyTestSupport
import Testing
import Yams

@testable import StandbyServer

/// The routes the server serves and the contract in openapi/standby.yaml are the same set.
@Suite("REST contract")
struct ContractTests {
    static let specFile = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("openapi/standby.yaml")

    static func normalize(_ text: String) -> String {
        text.split(separator: "\n", omittingEmptySubsequences: false)
            .map { $0.replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression) }
            .joined(separator: "\n").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test("the served document is openapi/standby.yaml (run scripts/embed-resources.sh after editing it)")
    func embeddedSpecIsCurrent() throws {
        let file = try String(contentsOf: Self.specFile, encoding: .utf8)
        #expect(Self.normalize(EmbeddedOpenAPI.yaml) == Self.normalize(file))
    }

    @Test("the generated server matches the spec (run scripts/generate-openapi.sh after editing it)")
    func generatedCodeIsCurrent() throws {
        let digest = try Data(contentsOf: Self.specFile).sha256Hex
        #expect(generatedFromSpecSHA256 == digest)
    }

    @Test("every registered route is in the spec, and the spec lists no route the server does not serve")
    func routesMatchSpec() async throws {
        let standby = TestStandby()
        let router = try buildRouter(components: try await standby.components())
        // The console's HTML pages (/console) are for browsers, not part of the REST contract.
        let served = Set(
            router.routes.filter { !"\($0.path)".hasPrefix("/console") && !"\($0.path)".hasPrefix("console") }.map {
                route -> String in
                let path = "\(route.path)".split(separator: "/").map { segment -> String in
                    segment.hasPrefix(":") ? "{\(segment.dropFirst())}" : String(segment)
                }.joined(separator: "/")
                return "\(route.method.rawValue) /\(path)"
            })
        let spec = try #require(
            try Yams.load(yaml: String(contentsOf: Self.specFile, encoding: .utf8)) as? [String: Any])
        let paths = try #require(spec["paths"] as? [String: Any])
        var documented = Set<String>()
        for (path, item) in paths {
            for method in (item as? [String: Any] ?? [:]).keys
            where ["get", "post", "put", "patch", "delete"].contains(method) {
                documented.insert("\(method.uppercased()) \(path)")
            }
        }
        #expect(
            served.subtracting(documented).isEmpty,
            "served but not in the spec: \(served.subtracting(documented).sorted())")
        #expect(
            documented.subtracting(served).isEmpty,
            "in the spec but not served: \(documented.subtracting(served).sorted())")
        #expect(served.count >= 30)
    }

    @Test("GET /openapi.yaml serves the contract")
    func served() async throws {
        try await TestStandby().live { client, _ in
            let response = try await client.execute(uri: "/openapi.yaml", method: .get)
            #expect(response.status == .ok)
            #expect(response.text.hasPrefix("openapi: 3.1.0"))
        }
    }
}
