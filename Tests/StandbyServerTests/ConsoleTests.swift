import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import NIOHTTP1
import StandbyApp
import StandbyPrimitives
import StandbyTestSupport
import Testing

@testable import StandbyServer

/// The console over HTTP: sessions, CSRF, roles, the overview's content and the live stream.
@Suite("The operator console")
struct ConsoleTests {
    /// Signs in with `token`; returns the session cookie (`name=value`) and the overview's HTML.
    func signIn(_ client: any TestClientProtocol, token: String) async throws -> (cookie: String, html: String) {
        let login = try await client.execute(
            uri: "/console/login", method: .post, headers: [.contentType: "application/x-www-form-urlencoded"],
            body: ByteBuffer(string: "token=\(token)"))
        #expect(login.status == .seeOther)
        #expect(login.headers[.location] == "/console")
        let setCookie = try #require(login.headers[.setCookie])
        #expect(setCookie.contains("HttpOnly"))
        #expect(setCookie.contains("SameSite=Strict"))
        let cookie = String(setCookie.split(separator: ";")[0])
        let overview = try await client.execute(uri: "/console", method: .get, headers: [.cookie: cookie])
        #expect(overview.status == .ok)
        return (cookie, overview.text)
    }

    static func csrf(in html: String) -> String? {
        guard let range = html.range(of: #"name="csrf" value=""#) else { return nil }
        return String(html[range.upperBound...].prefix { $0 != "\"" })
    }

    func post(_ client: any TestClientProtocol, _ uri: String, cookie: String, form: String) async throws
        -> TestResponse
    {
        try await client.execute(
            uri: uri, method: .post,
            headers: [.cookie: cookie, .contentType: "application/x-www-form-urlencoded"],
            body: ByteBuffer(string: form))
    }

    @Test("signing in: a form asks for an API token; a wrong one is refused; the overview needs a session")
    func signingIn() async throws {
        let standby = TestStandby()
        try await standby.run { client, _ in
            let anonymous = try await client.execute(uri: "/console", method: .get)
            #expect(anonymous.status == .seeOther)
            #expect(anonymous.headers[.location] == "/console/login")
            let form = try await client.execute(uri: "/console/login", method: .get)
            #expect(form.status == .ok)
            #expect(form.text.contains(#"<label for="token">API token</label>"#))
            #expect(form.text.contains(#"type="password""#))
            let wrong = try await client.execute(
                uri: "/console/login", method: .post, headers: [.contentType: "application/x-www-form-urlencoded"],
                body: ByteBuffer(string: "token=not-a-token-at-all"))
            #expect(wrong.status == .unauthorized)
            #expect(wrong.headers[.setCookie] == nil)
            #expect(wrong.text.contains("not valid"))
            let stream = try await client.execute(uri: "/console/stream", method: .get)
            #expect(stream.status == .unauthorized)
        }
    }

    @Test("the overview names deployments, hubs, their health and the serving hub; a reader sees no action")
    func overviewAndRoles() async throws {
        let standby = TestStandby()
        try await standby.run { client, _ in
            for offset in [0.0, 30, 60] { try await standby.report(client, "eastus-hub", "failure", at: offset) }
            let (cookie, html) = try await signIn(client, token: TestStandby.readerToken)
            #expect(html.contains("foundry-prod"))
            #expect(html.contains("eastus-hub"))
            #expect(html.contains("westus-hub"))
            #expect(html.contains(#"<span class="health">down</span>"#))
            #expect(html.contains(#"serving <strong class="serving">westus-hub</strong>"#))
            #expect(html.contains("Failure window: 3 failure(s)"))
            #expect(!html.contains("<form class=\"action\""))
            // The timeline draws the failover and links it to its event, which lists its commands.
            let timeline = try await client.execute(
                uri: "/console/deployments/foundry-prod/timeline", method: .get, headers: [.cookie: cookie])
            #expect(timeline.status == .ok)
            #expect(timeline.text.contains("<svg"))
            #expect(timeline.text.contains("failover eastus-hub → westus-hub"))
            let link = try #require(
                timeline.text.range(of: #"href="/console/failover-events/"#).map { range in
                    "/console/failover-events/" + timeline.text[range.upperBound...].prefix { $0 != "\"" }
                })
            let event = try await client.execute(uri: link, method: .get, headers: [.cookie: cookie])
            #expect(event.status == .ok)
            #expect(event.text.contains("<td>scale_compute</td><td>westus-hub</td><td>pending</td>"))
            #expect(event.text.contains("<td>route_traffic</td><td>westus-hub</td><td>pending</td>"))
            // The server refuses what the page does not offer.
            let csrf = try #require(Self.csrf(in: html))
            let refused = try await post(
                client, "/console/deployments/foundry-prod/pause", cookie: cookie, form: "csrf=\(csrf)&reason=test")
            #expect(refused.status == .forbidden)
            let preview = try await client.execute(
                uri: "/console/deployments/foundry-prod/pause", method: .get, headers: [.cookie: cookie])
            #expect(preview.status == .forbidden)
            let view = try await client.get("/v1/deployments/foundry-prod")
            #expect(view.json["automation"]?["state"] == .string("active"))
        }
    }

    @Test("an operator pauses with a reason; a form without its CSRF token is refused; logging out ends the session")
    func actionsAndCSRF() async throws {
        let standby = TestStandby()
        try await standby.run { client, _ in
            let (cookie, html) = try await signIn(client, token: TestStandby.operatorToken)
            #expect(
                html.contains(#"action="/console/deployments/foundry-prod/pause"><button type="submit">Pause</button>"#)
            )
            let csrf = try #require(Self.csrf(in: html))
            // The confirmation shows what the engine would do, and commits nothing.
            let preview = try await client.execute(
                uri: "/console/deployments/foundry-prod/failover", method: .get, headers: [.cookie: cookie])
            #expect(preview.status == .ok)
            #expect(
                preview.text.contains(
                    "What will happen: <strong>scales westus-hub up, routes traffic from eastus-hub to westus-hub</strong>"
                ))
            #expect(preview.text.contains(#"<label for="reason">Reason</label>"#))
            #expect(preview.text.contains("force: override the guardrails"))
            #expect(preview.text.contains(#"name="allowUnhealthyTarget""#))
            #expect(!preview.text.contains(#"name="until""#))
            let pausePreview = try await client.execute(
                uri: "/console/deployments/foundry-prod/pause", method: .get, headers: [.cookie: cookie])
            #expect(pausePreview.text.contains(#"<input id="until" name="until" type="datetime-local">"#))
            #expect(try await client.get("/v1/failover-events").json["items"]?.arrayValue?.isEmpty == true)
            let forged = try await post(
                client, "/console/deployments/foundry-prod/pause", cookie: cookie, form: "csrf=forged&reason=x")
            #expect(forged.status == .forbidden)
            // The datetime-local field sends a local time without a zone, which the form says is UTC.
            let until = Timestamp.format(standby.time.now().addingTimeInterval(3600))
            let paused = try await post(
                client, "/console/deployments/foundry-prod/pause", cookie: cookie,
                form: "csrf=\(csrf)&reason=region+maintenance&until=\(until.prefix(16))")
            #expect(paused.status == .seeOther)
            let view = try await client.get("/v1/deployments/foundry-prod")
            #expect(view.json["automation"]?["state"] == .string("paused"))
            #expect(view.json["automation"]?["pausedUntil"]?.stringValue == String(until.prefix(16)) + ":00.000Z")
            #expect(view.json["automation"]?["reason"] == .string("region maintenance"))
            let after = try await client.execute(
                uri: paused.headers[.location] ?? "/console", method: .get, headers: [.cookie: cookie])
            #expect(after.text.contains("pause of foundry-prod recorded"))
            #expect(
                after.text.contains(
                    "automation <strong>paused</strong>: region maintenance · until \(until.prefix(16))"))
            let logout = try await post(client, "/console/logout", cookie: cookie, form: "csrf=\(csrf)")
            #expect(logout.status == .seeOther)
            let gone = try await client.execute(uri: "/console", method: .get, headers: [.cookie: cookie])
            #expect(gone.status == .seeOther)
        }
    }

    @Test(
        "the listings: commands, the queue, alerts, history with its export, the cluster; only operators change the queue"
    )
    func listings() async throws {
        let standby = TestStandby()
        try await standby.run { client, _ in
            for offset in [0.0, 30, 60] { try await standby.report(client, "eastus-hub", "failure", at: offset) }
            let (cookie, _) = try await signIn(client, token: TestStandby.readerToken)
            func page(_ uri: String) async throws -> TestResponse {
                try await client.execute(uri: uri, method: .get, headers: [.cookie: cookie])
            }
            let commands = try await page("/console/commands?status=pending")
            #expect(commands.status == .ok)
            #expect(commands.text.contains("<td>route_traffic</td><td>westus-hub</td><td>pending</td>"))
            #expect(try await page("/console/jobs").text.contains("<h1>Resubmission queue</h1>"))
            #expect(try await page("/console/alerts").status == .ok)
            let history = try await page("/console/events?deployment=foundry-prod")
            #expect(history.text.contains("failover.decided"))
            #expect(history.text.contains(#"href="/console/events/export?format=ndjson""#))
            let export = try await page("/console/events/export?format=ndjson")
            #expect(export.status == .ok)
            #expect(export.text.split(separator: "\n").count >= 5)
            let cluster = try await page("/console/cluster")
            #expect(cluster.text.contains("Cluster (sqlite"))
            #expect(cluster.text.contains("yes (epoch 1)"))
            let anonymous = try await client.execute(uri: "/console/events/export?format=csv", method: .get)
            #expect(anonymous.status == .seeOther)
            let refused = try await post(
                client, "/console/resubmissions/nothing/retry", cookie: cookie,
                form: "csrf=\(Self.csrf(in: try await page("/console").text) ?? "")")
            #expect(refused.status == .forbidden)
        }
    }

    static func deploymentEvents(in stream: String) -> [String] {
        Array(stream.components(separatedBy: "event: deployments\n").dropFirst())
    }

    /// Reads `/console/stream` as its events arrive: once the first whole event is in, runs
    /// `change`, then reads until an event shows the hub down (or the stream ends).
    func readStream(
        _ streamClient: HTTPClient, port: Int, cookie: String, change: () async throws -> Void
    ) async throws -> String {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/console/stream")
        request.headers.add(name: "Cookie", value: cookie)
        let response = try await streamClient.execute(request, timeout: .seconds(30))
        #expect(response.status.code == 200)
        #expect(response.headers.first(name: "Content-Type")?.hasPrefix("text/event-stream") == true)
        var received = ""
        var changed = false
        for try await chunk in response.body {
            received += String(buffer: chunk)
            let events = Self.deploymentEvents(in: received)
            if !changed, events.first?.hasSuffix("\n\n") == true {
                changed = true
                try await change()
            }
            if events.last?.contains(#"<span class="health">down</span>"#) == true { break }
        }
        return received
    }

    @Test("the live stream sends the overview again when it changes, as Server-Sent Events")
    func liveStream() async throws {
        var standby = TestStandby()
        standby.extraYAML = "console: { streamLifetime: 60s, streamInterval: 200ms }"
        let configured = standby
        try await configured.live { client, components in
            let (cookie, _) = try await signIn(client, token: TestStandby.readerToken)
            let port = try #require(client.port)
            // The stream ends when the process begins to shut down, as it does here once the test has
            // read what it needs: the server then stops without waiting out the stream's lifetime.
            defer { components.readiness.beginDraining() }
            let streamClient = HTTPClient(eventLoopGroupProvider: .singleton)
            let received: String
            do {
                received = try await readStream(streamClient, port: port, cookie: cookie) {
                    for offset in [0.0, 30, 60] {
                        try await configured.report(client, "eastus-hub", "failure", at: offset)
                    }
                }
                try await streamClient.shutdown()
            } catch {
                try? await streamClient.shutdown()
                throw error
            }
            let events = Self.deploymentEvents(in: received)
            #expect(events.count >= 2)
            #expect(events.first?.contains(#"<span class="health">unknown</span>"#) == true)
            #expect(events.last?.contains(#"<span class="health">down</span>"#) == true)
        }
    }

    @Test("the console's templates are exactly the files of console/ (run scripts/embed-resources.sh)")
    func embeddedTemplates() throws {
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("console")
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter {
            $0.hasSuffix(".mustache")
        }
        #expect(!files.isEmpty)
        #expect(Set(files.map { String($0.dropLast(".mustache".count)) }) == Set(EmbeddedConsole.templates.keys))
        for file in files {
            let text = try String(contentsOf: folder.appendingPathComponent(file), encoding: .utf8)
            let name = String(file.dropLast(".mustache".count))
            #expect(ContractTests.normalize(EmbeddedConsole.templates[name] ?? "") == ContractTests.normalize(text))
        }
    }
}
