import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import StandbyApp
import StandbyCore
import StandbyPrimitives
import StandbyServer
import StandbyTestSupport
import Testing
import Yams

/// Every route of the spec × every caller: no token, and a token of each role.
@Suite("Access control matrix")
struct RoleMatrixTests {
    /// The roles each API route accepts (admin always does); routes not listed need no token.
    static let required: [String: Set<Role>] = [
        "POST /v1/health-reports": [.reporter],
        "GET /v1/alerts": [.reader], "GET /v1/alerts/{id}": [.reader],
        "GET /v1/deployments": [.reader], "GET /v1/deployments/{id}": [.reader],
        "POST /v1/deployments/{id}/failover": [.operator], "POST /v1/deployments/{id}/failback": [.operator],
        "POST /v1/deployments/{id}/pause": [.operator], "POST /v1/deployments/{id}/resume": [.operator],
        "GET /v1/failure-windows": [.reader], "GET /v1/failover-events": [.reader],
        "GET /v1/failover-events/{id}": [.reader],
        "GET /v1/commands": [.reader], "POST /v1/commands/{id}/ack": [.operator],
        "GET /v1/jobs": [.reader], "GET /v1/jobs/{id}": [.reader], "POST /v1/jobs": [.reporter, .operator],
        "PATCH /v1/jobs/{id}": [.reporter, .operator],
        "GET /v1/resubmissions": [.reader], "POST /v1/resubmissions/claim": [.operator],
        "POST /v1/resubmissions/{id}/heartbeat": [.operator], "POST /v1/resubmissions/{id}/complete": [.operator],
        "POST /v1/resubmissions/{id}/fail": [.operator], "POST /v1/resubmissions/{id}/retry": [.operator],
        "POST /v1/resubmissions/{id}/cancel": [.operator],
        "GET /v1/events": [.reader], "GET /v1/events/export": [.reader], "GET /v1/cluster": [.reader],
        "GET /v1/maintenance-windows": [.reader], "GET /v1/maintenance-windows/{id}": [.reader],
        "POST /v1/maintenance-windows": [.operator], "DELETE /v1/maintenance-windows/{id}": [.operator],
        "GET /v1/notifications": [.reader],
        "POST /v1/deployments/{id}/drills": [.operator], "GET /v1/deployments/{id}/availability": [.reader],
        "POST /v1/readiness-reports": [.reporter], "POST /v1/replays": [.operator],
        "GET /v1/drills": [.reader], "GET /v1/drills/{id}": [.reader], "POST /v1/drills/{id}/abort": [.operator],
    ]

    static let open: Set<String> = [
        "POST /webhooks/azure-monitor", "GET /healthz", "GET /readyz", "GET /metrics", "GET /openapi.yaml",
    ]

    @Test("401 without a token, 403 without the role, never either with it")
    func matrix() async throws {
        var configured = TestStandby()
        configured.extraYAML = ""
        let standby = configured
        let spec = try #require(
            try Yams.load(yaml: String(contentsOf: ContractTests.specFile, encoding: .utf8)) as? [String: Any])
        let paths = try #require(spec["paths"] as? [String: Any])
        let routes: [(String, String)] = paths.flatMap { path, item in
            (item as? [String: Any] ?? [:]).keys.filter { ["get", "post", "patch", "delete"].contains($0) }
                .map { ($0.uppercased(), path) }
        }
        #expect(Set(routes.map { "\($0.0) \($0.1)" }) == Set(Self.required.keys).union(Self.open))
        // One token per role; the test config's app-layer token has three roles, so add single-role ones.
        let tokens: [(Role, String)] = [
            (.reader, TestStandby.readerToken), (.reporter, TestStandby.reporterToken),
        ]
        try await standby.run { client, _ in
            for (method, path) in routes where !Self.open.contains("\(method) \(path)") {
                let uri = path.replacingOccurrences(of: "{id}", with: "unknown-id")
                let allowed = Self.required["\(method) \(path)"]!
                let none = try await client.execute(
                    uri: uri, method: .init(method)!, headers: [.contentType: "application/json"],
                    body: ByteBuffer(string: "{}"))
                #expect(none.status == .unauthorized, "\(method) \(path) without a token → \(none.status)")
                for (role, token) in tokens {
                    let response = try await client.execute(
                        uri: uri, method: .init(method)!,
                        headers: [.authorization: "Bearer \(token)", .contentType: "application/json"],
                        body: ByteBuffer(string: "{}"))
                    if allowed.contains(role) {
                        #expect(
                            ![401, 403].contains(response.status.code),
                            "\(method) \(path) as \(role) → \(response.status)")
                    } else {
                        #expect(response.status == .forbidden, "\(method) \(path) as \(role) → \(response.status)")
                        #expect(response.headers[.contentType] == "application/problem+json")
                    }
                }
                // The app-layer token holds reader, reporter and operator; the admin one (configured as a
                // sha256: hash) may do everything.
                for token in [TestStandby.operatorToken, TestStandby.adminToken] {
                    let response = try await client.execute(
                        uri: uri, method: .init(method)!,
                        headers: [.authorization: "Bearer \(token)", .contentType: "application/json"],
                        body: ByteBuffer(string: "{}"))
                    #expect(
                        ![401, 403].contains(response.status.code),
                        "\(method) \(path) with \(token) → \(response.status)")
                }
            }
        }
    }
}
