import Foundation
import HTTPTypes
import HummingbirdTesting
import StandbyCore
import StandbyPrimitives
import StandbyTestSupport
import Testing

@Suite("GET /v1/alerts")
struct AlertsAPITests {
    @Test("filters by hub and deployment, pages with a cursor, and validates parameters")
    func filtersAndPaging() async throws {
        let standby = TestStandby()
        try await standby.run { client, _ in
            for file in [
                "test-action-metric-static.json", "legacy-metric-static.json",
                "legacy-activitylog-administrative-noncommon.json",
                "test-action-budget.json", "common-log-alerts-v2-fired.json",
            ] {
                _ = try await client.postWebhook(try Fixtures.data(file))
            }
            let west = try await client.get("/v1/alerts?hub=westus-hub").json["items"]?.arrayValue ?? []
            #expect(west.count == 2)
            let prod = try await client.get("/v1/alerts?deployment=foundry-prod").json["items"]?.arrayValue ?? []
            #expect(prod.count == 3)
            var seen: [String] = []
            var uri = "/v1/alerts?limit=2"
            while true {
                let page = try await client.get(uri).json
                seen += (page["items"]?.arrayValue ?? []).compactMap { $0["id"]?.stringValue }
                guard let next = page["next"]?.stringValue else { break }
                uri = "/v1/alerts?limit=2&cursor=\(next)"
            }
            #expect(seen.count == 5)
            #expect(Set(seen).count == 5)
            for bad in ["limit=0", "limit=1001", "limit=x", "cursor=nonsense", "condition=maybe", "since=yesterday"] {
                let response = try await client.get("/v1/alerts?\(bad)")
                #expect(response.status == .badRequest, "\(bad)")
                #expect(response.headers[.contentType] == "application/problem+json")
            }
            let future = try await client.get("/v1/alerts?since=2100-01-01T00:00:00Z").json["items"]?.arrayValue
            #expect(future?.isEmpty == true)
        }
    }

    @Test("requires a reader token: 401 without or with a bad one, 403 without the role")
    func access() async throws {
        let standby = TestStandby()
        try await standby.run { client, _ in
            let none = try await client.execute(uri: "/v1/alerts", method: .get)
            #expect(none.status == .unauthorized)
            #expect(none.headers[.wwwAuthenticate] != nil)
            #expect(try await client.get("/v1/alerts", token: "nope").status == .unauthorized)
            let forbidden = try await client.get("/v1/alerts", token: TestStandby.reporterToken)
            #expect(forbidden.status == .forbidden)
            #expect(forbidden.headers[.contentType] == "application/problem+json")
            #expect(try await client.get("/v1/alerts", token: TestStandby.operatorToken).status == .ok)
            #expect(try await client.get("/v1/alerts/does-not-exist").status == .notFound)
        }
    }

    @Test("health endpoints answer without a token")
    func health() async throws {
        try await TestStandby().live { client, _ in
            #expect(try await client.execute(uri: "/healthz", method: .get).json["status"] == .string("ok"))
            #expect(try await client.execute(uri: "/readyz", method: .get).json["status"] == .string("ready"))
            let missing = try await client.execute(uri: "/no/such/route", method: .get)
            #expect(missing.status == .notFound)
            #expect(missing.headers[.contentType] == "application/problem+json")
        }
    }
}
