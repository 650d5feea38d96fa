import Foundation
import HTTPTypes
import HummingbirdTesting
import StandbyCore
import StandbyPrimitives
import StandbyTestSupport
import Testing

@Suite("GET /metrics")
struct MetricsTests {
    /// The value of the first sample line that starts with `name{` and holds every label given.
    func sample(_ text: String, _ name: String, _ labels: [String] = []) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(name + "{") || line.hasPrefix(name + " ") {
            if labels.allSatisfy({ line.contains($0) }),
                let value = line.split(separator: " ").last.flatMap({ Double($0) })
            {
                return value
            }
        }
        return nil
    }

    @Test("counters and gauges move with a failover scenario")
    func scenario() async throws {
        let standby = TestStandby()
        try await standby.run { client, _ in
            let body = try Fixtures.data("test-action-metric-static.json")
            _ = try await client.postWebhook(body)
            _ = try await client.postWebhook(body)
            for offset: TimeInterval in [0, 10, 20] {
                try await standby.report(client, "eastus-hub", "failure", at: offset)
            }
            try await standby.report(client, "eastus-hub", "failure", at: 20)
            _ = try await client.postWebhook(Data("{nope".utf8))
            let scrape = try await client.execute(uri: "/metrics", method: .get)
            #expect(scrape.status == .ok)
            #expect(scrape.headers[.contentType]?.hasPrefix("text/plain") == true)
            let text = scrape.text
            #expect(
                sample(
                    text, "standby_webhook_deliveries_total",
                    [#"outcome="new""#, #"schema="azureMonitorCommonAlertSchema""#]) == 1)
            #expect(sample(text, "standby_webhook_deliveries_total", [#"outcome="duplicate""#]) == 1)
            #expect(sample(text, "standby_webhook_deliveries_total", [#"schema="malformed""#]) == 1)
            #expect(sample(text, "standby_duplicates_total", [#"source="webhook""#]) == 1)
            #expect(sample(text, "standby_duplicates_total", [#"source="report""#]) == 1)
            #expect(sample(text, "standby_health_reports_total", [#"outcome="accepted""#]) == 3)
            #expect(sample(text, "standby_hub_health", [#"hub="eastus-hub""#, #"state="down""#]) == 1)
            #expect(sample(text, "standby_hub_health", [#"hub="eastus-hub""#, #"state="up""#]) == 0)
            #expect(sample(text, "standby_open_failure_windows", [#"hub="eastus-hub""#]) == 1)
            #expect(sample(text, "standby_failover_events", [#"trigger="window""#, #"kind="failover""#]) == 1)
            #expect(sample(text, "standby_commands", [#"status="pending""#]) == 2)
            #expect(sample(text, "standby_resubmission_queue", [#"status="queued""#]) == 0)
            #expect(
                sample(
                    text, "standby_http_request_duration_seconds_count",
                    [#"route="/v1/health-reports""#, #"status="200""#]) == 4)
            #expect(sample(text, "standby_db_commit_duration_seconds_count") ?? 0 >= 1)
            // Request ids come back to the caller, and tokens never appear in metrics.
            #expect(scrape.headers[HTTPField.Name("X-Request-Id")!]?.isEmpty == false)
            #expect(!text.contains(TestStandby.webhookToken))
        }
    }
}
