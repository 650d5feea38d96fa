import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import StandbyApp
import StandbyCore
import StandbyPrimitives
import StandbyTestSupport
import Synchronization
import Testing

@testable import StandbyServer

/// Slack, Teams and PagerDuty stand-ins on loopback: each route records what it was sent and fails
/// its first `failures[route]` requests with 503.
final class NotificationReceivers: Sendable {
    struct Received: Sendable {
        var route: String
        var body: JSONValue
        var headers: HTTPFields
    }

    let failures: [String: Int]
    private let state = Mutex((counts: [String: Int](), received: [Received]()))

    init(failures: [String: Int] = [:]) {
        self.failures = failures
    }

    /// Accepted bodies of `route`, in order.
    func accepted(_ route: String) -> [JSONValue] {
        state.withLock { state in
            var attempt = 0
            return state.received.filter { $0.route == route }.compactMap { received in
                attempt += 1
                return attempt > failures[route, default: 0] ? received.body : nil
            }
        }
    }

    func attempts(_ route: String) -> Int { state.withLock { $0.counts[route, default: 0] } }

    func received(_ route: String) -> [Received] { state.withLock { $0.received.filter { $0.route == route } } }

    func application() -> some ApplicationProtocol {
        let router = Router()
        for route in ["slack", "teams", "pagerduty", "webhook"] {
            router.post(RouterPath(stringLiteral: route)) { request, _ -> Response in
                let body = try await request.body.collect(upTo: 1 << 20)
                let json = (try? JSONValue.decode(Data(body.readableBytesView))) ?? .null
                let fail = self.state.withLock { state -> Bool in
                    state.counts[route, default: 0] += 1
                    state.received.append(Received(route: route, body: json, headers: request.headers))
                    return state.counts[route, default: 0] <= self.failures[route, default: 0]
                }
                // PagerDuty answers 202 Accepted; the others 200.
                return Response(status: fail ? .serviceUnavailable : route == "pagerduty" ? .accepted : .ok)
            }
        }
        var logger = Logger(label: "receivers")
        logger.logLevel = .warning
        return Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)), logger: logger)
    }
}

@Suite("Notifications to people")
struct NotificationTests {
    static let routingKey = "R0UTINGKEY0123456789abcdef012345"
    static let webhookSecret = "notify-secret-of-at-least-32-bytes!"

    func makeStandby(port: Int, routes: String? = nil, extra: String = "") -> TestStandby {
        var standby = TestStandby()
        let base = "http://127.0.0.1:\(port)"
        standby.extraYAML = """
            notifications:
              receivers:
                - { name: oncall-slack, type: slack, url: "\(base)/slack" }
                - { name: sre-teams, type: teams, url: "\(base)/teams" }
                - { name: pager, type: pagerduty, url: "\(base)/pagerduty", routingKey: "\(Self.routingKey)" }
                - { name: audit, type: webhook, url: "\(base)/webhook", secret: "\(Self.webhookSecret)" }
              routes:
            \(routes ?? """
                - { receivers: [oncall-slack, sre-teams, audit] }
                - { events: [failover, no_target, resolved], receivers: [pager], deployments: [foundry-prod] }
            """)
            \(extra)
            """
        return standby
    }

    func makeNotifier(_ standby: TestStandby, _ components: StandbyComponents, maxAttempts: Int = 5) throws
        -> NotificationDispatcher
    {
        var dispatch = DispatchSettings()
        dispatch.maxAttempts = maxAttempts
        dispatch.timeout = 5
        return NotificationDispatcher(
            controlPlane: components.controlPlane, leadership: components.leadership,
            settings: try standby.configuration().notifications, dispatch: dispatch, instance: "standby-test",
            timeSource: standby.time, metrics: components.metrics, logger: Logger(label: "test"), random: { 0.5 })
    }

    /// Passes until nothing is due, moving the clock past each backoff.
    func drain(_ notifier: NotificationDispatcher, _ standby: TestStandby) async throws {
        let http = CommandDispatcher.makeClient()
        defer { _ = http.shutdown() }
        for _ in 0..<20 {
            try await notifier.dispatchOnce(client: http)
            standby.time.advance(by: 30)
        }
    }

    func failOver(_ standby: TestStandby, _ client: any TestClientProtocol) async throws {
        for offset: TimeInterval in [0, 10, 20] {
            try await standby.report(client, "eastus-hub", "failure", at: offset)
        }
    }

    @Test(
        "a failover reaches Slack, Teams and PagerDuty in their documented shapes, once each, retried past a 503"
    )
    func payloadShapes() async throws {
        let receivers = NotificationReceivers(failures: ["slack": 2])
        try await receivers.application().test(.live) { receiverClient in
            let port = try #require(receiverClient.port)
            let standby = makeStandby(port: port)
            try await standby.run { client, components in
                try await failOver(standby, client)
                try await drain(try makeNotifier(standby, components), standby)

                // Slack incoming webhook: text for the notification, Block Kit blocks for the message.
                #expect(receivers.attempts("slack") == 3)
                let slack = try #require(receivers.accepted("slack").first)
                #expect(receivers.accepted("slack").count == 1)
                let text = try #require(slack["text"]?.stringValue)
                #expect(
                    text.hasPrefix(
                        "foundry-prod: failed over from eastus-hub to westus-hub — eastus-hub is DOWN: 3 consecutive failures within 300s from probe:probe-westeurope"
                    ))
                let blocks = try #require(slack["blocks"]?.arrayValue)
                #expect(blocks.compactMap { $0["type"]?.stringValue } == ["header", "section", "context"])
                #expect(blocks[0]["text"]?["type"]?.stringValue == "plain_text")
                #expect(blocks[1]["text"]?["type"]?.stringValue == "mrkdwn")
                #expect(blocks[1]["text"]?["text"]?.stringValue == text)

                // Teams Workflows: a message with one Adaptive Card attachment.
                let teams = try #require(receivers.accepted("teams").first)
                #expect(teams["type"]?.stringValue == "message")
                let attachments = try #require(teams["attachments"]?.arrayValue)
                #expect(attachments.count == 1)
                #expect(attachments[0]["contentType"]?.stringValue == "application/vnd.microsoft.card.adaptive")
                let card = try #require(attachments[0]["content"])
                #expect(card["type"]?.stringValue == "AdaptiveCard")
                #expect(card["$schema"]?.stringValue == "http://adaptivecards.io/schemas/adaptive-card.json")
                #expect(card["version"]?.stringValue != nil)
                let body = try #require(card["body"]?.arrayValue)
                #expect(body.contains { $0["type"]?.stringValue == "TextBlock" && $0["text"]?.stringValue == text })
                #expect(body.contains { $0["type"]?.stringValue == "FactSet" })

                // PagerDuty Events API v2: a trigger with routing_key, dedup_key and payload.
                let pagerDuty = try #require(receivers.accepted("pagerduty").first)
                #expect(receivers.accepted("pagerduty").count == 1)
                #expect(pagerDuty["routing_key"]?.stringValue == Self.routingKey)
                #expect(pagerDuty["event_action"]?.stringValue == "trigger")
                let dedupKey = try #require(pagerDuty["dedup_key"]?.stringValue)
                #expect(dedupKey.hasPrefix("standby/foundry-prod/"))
                let payload = try #require(pagerDuty["payload"])
                #expect(payload["summary"]?.stringValue == text)
                #expect(payload["severity"]?.stringValue == "critical")
                #expect(payload["source"]?.stringValue == "standby/standby-test")
                #expect(payload["component"]?.stringValue == "eastus-hub")
                #expect(payload["group"]?.stringValue == "foundry-prod")
                #expect(payload["timestamp"]?.stringValue.flatMap(Timestamp.parse) != nil)

                // Standby's own webhook: signed like command pushes.
                let webhook = try #require(receivers.received("webhook").first)
                #expect(webhook.body["event"]?.stringValue == "failover")
                let signature = try #require(webhook.headers[HTTPField.Name("Standby-Signature")!])
                let timestamp = try #require(
                    signature.split(separator: ",").first?.split(separator: "=").last.flatMap { Int($0) })
                #expect(
                    signature
                        == CommandDispatcher.signature(
                            secret: Self.webhookSecret, timestamp: timestamp, body: webhook.body.canonicalBytes()))
                #expect(webhook.headers[HTTPField.Name("Idempotency-Key")!] == webhook.body["id"]?.stringValue)

                // The outbox shows every attempt.
                let listed = try await client.get("/v1/notifications?deployment=foundry-prod").json
                let items = try #require(listed["items"]?.arrayValue)
                #expect(items.count == 4)
                #expect(items.allSatisfy { $0["status"]?.stringValue == "delivered" })
                let slackRow = try #require(items.first { $0["receiver"]?.stringValue == "oncall-slack" })
                #expect(slackRow["attempts"]?.doubleValue == 3)
                #expect(slackRow["summary"]?.stringValue == text)
            }
        }
    }

    @Test(
        "PagerDuty gets a trigger and, when the deployment is back on its primary, the resolve with the same dedup_key")
    func triggerAndResolve() async throws {
        let receivers = NotificationReceivers()
        try await receivers.application().test(.live) { receiverClient in
            let port = try #require(receiverClient.port)
            let standby = makeStandby(port: port)
            try await standby.run { client, components in
                try await failOver(standby, client)
                // The primary recovers; an operator fails back (manual failback mode).
                for offset: TimeInterval in [30, 40, 50, 60, 70] {
                    try await standby.report(client, "eastus-hub", "success", at: offset)
                }
                let failback = try await client.send(
                    .post, "/v1/deployments/foundry-prod/failback", json: #"{"reason":"primary is back","force":true}"#)
                #expect(failback.status == .ok)
                try await drain(try makeNotifier(standby, components), standby)
                let pagerDuty = receivers.accepted("pagerduty")
                #expect(pagerDuty.compactMap { $0["event_action"]?.stringValue } == ["trigger", "resolve"])
                let keys = Set(pagerDuty.compactMap { $0["dedup_key"]?.stringValue })
                #expect(keys.count == 1)
                #expect(pagerDuty.last?["routing_key"]?.stringValue == Self.routingKey)
                let slackTexts = receivers.accepted("slack").compactMap { $0["text"]?.stringValue }
                #expect(slackTexts.contains { $0.hasPrefix("foundry-prod: failed back from westus-hub to eastus-hub") })
                #expect(slackTexts.last == "foundry-prod: resolved — eastus-hub serving again")
            }
        }
    }

    @Test("a receiver that refuses the message (4xx) is not retried; the failure is visible")
    func permanentRefusal() async throws {
        let receivers = NotificationReceivers(failures: [:])
        try await receivers.application().test(.live) { receiverClient in
            let port = try #require(receiverClient.port)
            var configured = makeStandby(port: port, routes: "    - { receivers: [broken] }")
            configured.extraYAML = configured.extraYAML.replacingOccurrences(
                of: "    - { name: audit,",
                with:
                    "    - { name: broken, type: slack, url: \"http://127.0.0.1:\(port)/missing\" }\n    - { name: audit,"
            )
            let standby = configured
            try await standby.run { client, components in
                try await failOver(standby, client)
                try await drain(try makeNotifier(standby, components), standby)
                let failed = try await client.get("/v1/notifications?status=failed").json["items"]?.arrayValue ?? []
                #expect(failed.count == 1)
                #expect(failed.first?["attempts"]?.doubleValue == 1)
                #expect(failed.first?["lastError"]?.stringValue == "HTTP 404")
            }
        }
    }

    @Test("Slack text escapes its control characters; long summaries fit Block Kit's and PagerDuty's limits")
    func escapingAndLimits() throws {
        let notification = NotificationView(
            id: "n1", receiver: "slack", event: .automationPaused, deploymentId: "prod", incidentKey: "k",
            action: .trigger, severity: .warning,
            summary: "prod: paused — <!channel> <https://evil.example|docs> & " + String(repeating: "x", count: 4000),
            details: [:], occurredAt: "2026-12-02T00:00:00.000Z", status: .pending, attempts: 0, nextAttemptAt: nil,
            lastError: nil, deliveredAt: nil, createdAt: "2026-12-02T00:00:00.000Z",
            updatedAt: "2026-12-02T00:00:00.000Z")
        let slack = NotificationPayloads.slack(notification)
        let text = try #require(slack["text"]?.stringValue)
        #expect(text.hasPrefix("prod: paused — &lt;!channel&gt; &lt;https://evil.example|docs&gt; &amp; "))
        let section = try #require(slack["blocks"]?.arrayValue?[1]["text"]?["text"]?.stringValue)
        #expect(section.count == NotificationPayloads.slackBlockTextLimit)
        let pagerDuty = NotificationPayloads.pagerDuty(notification, routingKey: "key", instance: "i")
        #expect(pagerDuty["payload"]?["summary"]?.stringValue?.count == NotificationPayloads.pagerDutySummaryLimit)
    }

    @Test("routes: a route without events takes them all; deployments and events narrow a route")
    func routing() throws {
        let routing = NotificationRouting(routes: [
            NotificationRoute(events: nil, receivers: ["all"], deployments: nil),
            NotificationRoute(events: [.failover], receivers: ["pager", "all"], deployments: ["prod"]),
        ])
        #expect(routing.receivers(for: .failover, deploymentId: "prod") == ["all", "pager"])
        #expect(routing.receivers(for: .failover, deploymentId: "staging") == ["all"])
        #expect(routing.receivers(for: .maintenanceStarted, deploymentId: "prod") == ["all"])
    }

    @Test(
        "config: unknown events and receivers, PagerDuty without a routing key and plain http are refused with their path"
    )
    func configProblems() throws {
        let bad = """
            notifications:
              receivers:
                - { name: pager, type: pagerduty }
                - { name: chat, type: slack, url: "http://hooks.example.com/x" }
              routes:
                - { events: [failover, explosion], receivers: [pager, nobody] }
            """
        var standby = TestStandby()
        standby.extraYAML = bad
        do {
            _ = try standby.configuration()
            Issue.record("the config was accepted")
        } catch {
            let text = String(describing: error)
            #expect(text.contains("notifications.receivers[0].routingKey"))
            #expect(text.contains("notifications.receivers[1].url"))
            #expect(text.contains("notifications.routes[0].events[1]"))
            #expect(text.contains("notifications.routes[0].receivers[1]"))
        }
    }
}
