import Foundation
import GRDB
import HTTPTypes
import HummingbirdTesting
import NIOCore
import StandbyCore
import StandbyPrimitives
import StandbyTestSupport
import Synchronization
import Testing

@testable import StandbyApp
@testable import StandbyServer
@testable import StandbyStore

#if canImport(Glibc)
    import Glibc
#endif

extension RawConnection {
    /// Sends without blocking; false once the peer has closed the connection.
    func trickle(_ text: String) -> Bool {
        let sent = text.withCString { Glibc.send(descriptor, $0, strlen($0), Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
        return sent >= 0 || errno == EAGAIN
    }

    /// Whether the peer has closed the connection (reading whatever it answered first).
    func peerClosed() -> Bool {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = recv(descriptor, &buffer, buffer.count, Int32(MSG_DONTWAIT))
            if count == 0 { return true }
            if count < 0 { return errno != EAGAIN && errno != EWOULDBLOCK }
        }
    }
}

/// The attacks of the hostile review, over HTTP against a live server (issue: hardening).
@Suite("Hardening over HTTP")
struct HardeningHTTPTests {
    static let trickleRequest =
        "POST /webhooks/azure-monitor?token=\(TestStandby.webhookToken) HTTP/1.1\r\nHost: x\r\n"
        + "Content-Type: application/json\r\nContent-Length: 5000\r\n\r\n{"

    /// Runs `body` against the real `standby` binary: its own event loops, as the attacks would
    /// meet it, rather than those the test process shares between all its servers and clients.
    static func withProcess(_ standby: TestStandby, _ body: (Int) async throws -> Void) async throws {
        let (server, port) = try await StandbyProcess.start(standby, log: "standby.log")
        let process = server.process
        defer {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        try await body(port)
    }

    @Test(
        "1: 50 trickling bodies are all closed within bodyTimeout + 2 s; a real delivery meanwhile is 2xx in under 1 s")
    func tricklingBodies() async throws {
        var configured = TestStandby()
        configured.serverYAML = ", bodyTimeout: 2s"
        let standby = configured
        let body = try Fixtures.data("test-action-metric-static.json")
        let delivery =
            "POST /webhooks/azure-monitor?token=\(TestStandby.webhookToken) HTTP/1.1\r\nHost: x\r\n"
            + "Content-Type: application/json\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n"
            + String(decoding: body, as: UTF8.self)
        try await Self.withProcess(standby) { port in
            let connections = await blocking { (0..<50).compactMap { _ in RawConnection(port: port) } }
            #expect(connections.count == 50)
            for connection in connections { connection.send(Self.trickleRequest) }
            let started = ContinuousClock.now
            // A real delivery while the trickle runs, on a connection of its own.
            async let timedDelivery = blocking { () -> (Int?, Duration) in
                Thread.sleep(forTimeInterval: 0.5)
                let sent = ContinuousClock.now
                let status = RawConnection.status(port: port, delivery)
                return (status, ContinuousClock.now - sent)
            }
            // One byte every 250 ms on each, until the server has closed them all (bounded: 8 s).
            let closedAfter = await blocking { () -> [Duration?] in
                var closedAt = [Duration?](repeating: nil, count: connections.count)
                while ContinuousClock.now - started < .seconds(8), closedAt.contains(where: { $0 == nil }) {
                    for (index, connection) in connections.enumerated() where closedAt[index] == nil {
                        if connection.peerClosed() || !connection.trickle(" ") {
                            closedAt[index] = ContinuousClock.now - started
                        }
                    }
                    Thread.sleep(forTimeInterval: 0.25)
                }
                return closedAt
            }
            #expect(closedAfter.allSatisfy { $0 != nil && $0! <= .seconds(4) }, "\(closedAfter)")
            let (status, elapsed) = await timedDelivery
            #expect(status == 200)
            #expect(elapsed < .seconds(1), "the delivery took \(elapsed)")
        }
    }

    @Test("1: past server.maxConnections a new connection waits, and is served once another closes")
    func connectionCap() async throws {
        var configured = TestStandby()
        configured.serverYAML = ", maxConnections: 3"
        try await Self.withProcess(configured) { port in
            // Three connections, each answered once (so that the server has surely accepted them).
            var held: [RawConnection]? = await blocking { () -> [RawConnection] in
                (0..<3).compactMap { _ -> RawConnection? in
                    guard let connection = RawConnection(port: port) else { return nil }
                    connection.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                    var buffer = [UInt8](repeating: 0, count: 1024)
                    return recv(connection.descriptor, &buffer, buffer.count, 0) > 0 ? connection : nil
                }
            }
            #expect(held?.count == 3)
            let waiting = try #require(await RawConnection.open(port: port))
            waiting.send("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            let answeredEarly = await blocking { () -> Bool in
                Thread.sleep(forTimeInterval: 1)
                var byte: UInt8 = 0
                return recv(waiting.descriptor, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT)) > 0
            }
            #expect(!answeredEarly)
            // The held connections are still served meanwhile.
            held?[0].send("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            let (text, _) = await held![0].readUntilClosed()
            #expect(text.hasPrefix("HTTP/1.1 200"))
            held = nil  // the client closes its three connections
            let (answer, _) = await waiting.readUntilClosed()
            #expect(answer.hasPrefix("HTTP/1.1 200"), "\(answer.prefix(40))")
        }
    }

    @Test(
        "1: a declared body over maxBodyBytes is answered 413 at once and the connection closed, before auth or reading"
    )
    func declaredTooLarge() async throws {
        try await Self.withProcess(TestStandby()) { port in
            for request in [
                "POST /webhooks/azure-monitor HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n{",
                "POST /v1/deployments/foundry-prod/pause HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(TestStandby.operatorToken)\r\n"
                    + "Content-Type: application/json\r\nContent-Length: 314572800\r\n\r\n{\"reason\":\"",
            ] {
                let connection = try #require(await RawConnection.open(port: port))
                connection.send(request)
                let started = Date()
                let (text, closed) = await connection.readUntilClosed()
                #expect(text.hasPrefix("HTTP/1.1 413"), "\(text.prefix(60))")
                #expect(text.lowercased().contains("connection: close"))
                #expect(closed)
                // Well before bodyTimeout (10 s): nothing of the body was waited for.
                #expect(Date().timeIntervalSince(started) < 5)
            }
        }
    }

    @Test("1: a 401 to a body still arriving closes the connection instead of draining it")
    func unauthorizedCloses() async throws {
        try await Self.withProcess(TestStandby()) { port in
            let connection = try #require(await RawConnection.open(port: port))
            connection.send(
                "POST /webhooks/azure-monitor?token=wrong-token-of-some-length HTTP/1.1\r\nHost: x\r\nContent-Length: 50000\r\n\r\n{"
            )
            let started = Date()
            let (text, closed) = await connection.readUntilClosed()
            #expect(text.hasPrefix("HTTP/1.1 401"))
            #expect(closed)
            // Well before bodyTimeout (10 s): the server did not wait for the rest of the body.
            #expect(Date().timeIntervalSince(started) < 5)
        }
    }

    @Test("2: a chunked body past the limit on an operator route is refused 413, and nothing is stored")
    func chunkedTooLarge() async throws {
        var configured = TestStandby()
        configured.maxBodyBytes = 4096
        let standby = configured
        try await standby.live { client, _ in
            let port = try #require(client.port)
            let connection = try #require(await RawConnection.open(port: port))
            let chunk = String(repeating: "x", count: 1000)
            var request =
                "POST /v1/deployments/foundry-prod/pause HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(TestStandby.operatorToken)\r\n"
                + "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            request += "b\r\n{\"reason\":\"\r\n"
            for _ in 0..<8 { request += "3e8\r\n\(chunk)\r\n" }
            request += "2\r\n\"}\r\n0\r\n\r\n"
            connection.send(request)
            let (text, _) = await connection.readUntilClosed()
            #expect(text.hasPrefix("HTTP/1.1 413"), "\(text.prefix(80))")
            let paused = try await FreshConnection.deployment(port: port)
            #expect(paused["automation"]?["paused"] != .bool(true))
        }
    }

    @Test("2: free text is bounded and hubs are checked against the topology before anything is stored")
    func boundedText() async throws {
        try await TestStandby().live { client, _ in
            let long = String(repeating: "r", count: 2001)
            let pause = try await client.send(
                .post, "/v1/deployments/foundry-prod/pause", json: #"{"reason":"\#(long)"}"#)
            #expect(pause.status == .unprocessableContent)
            #expect(pause.json["field"] == .string("reason"))
            let failover = try await client.send(
                .post, "/v1/deployments/foundry-prod/failover", json: #"{"reason":"drill","hub":"=HYPERLINK(\"x\")"}"#)
            #expect(failover.status == .unprocessableContent)
            #expect(failover.json["field"] == .string("hub"))
            let worker = String(repeating: "w", count: 201)
            let claim = try await client.send(.post, "/v1/resubmissions/claim", json: #"{"worker":"\#(worker)"}"#)
            #expect(claim.status == .unprocessableContent)
            let deployment = try await client.deployment()
            #expect(deployment["automation"]?["paused"] != .bool(true))
            let events = try await client.get("/v1/events?type=operator.pause").json["items"]?.arrayValue ?? []
            #expect(events.isEmpty)
        }
    }

    @Test(
        "3: documents nested deeper than 64 levels: a job spec is a 400, a webhook is kept raw and its alert still served"
    )
    func poisonDocuments() async throws {
        try await TestStandby().live { client, _ in
            let deepSpec = String(repeating: "[", count: 509) + String(repeating: "]", count: 509)
            let job = try await client.send(
                .post, "/v1/jobs", json: #"{"externalId":"run-deep","hub":"eastus-hub","spec":\#(deepSpec)}"#)
            #expect(job.status == .badRequest)
            #expect(job.headers[.contentType] == "application/problem+json")
            #expect(try await client.get("/v1/jobs").status == .ok)
            let deepWebhook = Data(
                ("{\"data\":" + String(repeating: "[", count: 512) + String(repeating: "]", count: 512) + "}").utf8)
            let stored = try await client.postWebhook(deepWebhook)
            #expect(stored.status == .badRequest)
            let alertId = try #require(stored.json["alertId"]?.stringValue)
            let alert = try await client.get("/v1/alerts/\(alertId)")
            #expect(alert.status == .ok)
            #expect(alert.json["rawBase64"]?.stringValue.flatMap { Data(base64Encoded: $0) } == deepWebhook)
        }
    }

    /// A running job on the primary, then three failures: the failover queues it for resubmission.
    static func queueOneResubmission(_ standby: TestStandby, _ client: any TestClientProtocol) async throws {
        _ = try await client.send(
            .post, "/v1/jobs", json: #"{"externalId":"run-1","hub":"eastus-hub","spec":{"image":"x"}}"#)
        for offset: TimeInterval in [0, 10, 20] {
            try await standby.report(client, "eastus-hub", "failure", at: offset)
        }
    }

    @Test("3: a claim whose answer cannot be built leases nothing")
    func claimAnswerBeforeLeases() async throws {
        let standby = TestStandby()
        try await standby.run { client, components in
            try await Self.queueOneResubmission(standby, client)
            struct Unencodable: Error {}
            await #expect(throws: Unencodable.self) {
                try await components.jobs.claim(worker: "w", limit: 10, leaseSeconds: 60, now: standby.time.now()) {
                    _ -> Int in throw Unencodable()
                }
            }
            let queued = try await client.get("/v1/resubmissions?status=queued").json["items"]?.arrayValue ?? []
            #expect(queued.count == 1)
            let claimed = try await client.send(.post, "/v1/resubmissions/claim", json: #"{"worker":"w"}"#)
            #expect(claimed.json["items"]?.arrayValue?.count == 1)
        }
    }

    @Test("9: readiness and metrics answer from a short cache; /metrics needs server.metricsToken when it is set")
    func cheapProbes() async throws {
        var configured = TestStandby()
        let metricsToken = "metrics-token-0123456789"
        configured.serverYAML = ", metricsToken: \(metricsToken)"
        let standby = configured
        try await standby.run { client, _ in
            // From the first probe on: the cache's bound runs from the write that probe made.
            let started = ContinuousClock.now
            #expect(try await client.execute(uri: "/readyz", method: .get).status == .ok)
            let first = try await standby.openDatabase().read { db in
                try String.fetchOne(db, sql: "SELECT checked_at FROM readiness")
            }
            standby.time.advance(by: 1)
            for _ in 0..<5 { #expect(try await client.execute(uri: "/readyz", method: .get).status == .ok) }
            let elapsed = ContinuousClock.now - started
            let after = try await standby.openDatabase().read { db in
                try String.fetchOne(db, sql: "SELECT checked_at FROM readiness")
            }
            // Within the cache's bound, no probe wrote again: the cache answered.
            #expect(first != nil)
            if elapsed < StorageHealth.freshness - .milliseconds(100) { #expect(after == first) }
            #expect(try await client.execute(uri: "/metrics", method: .get).status == .unauthorized)
            let wrong = try await client.execute(
                uri: "/metrics", method: .get, headers: [.authorization: "Bearer nope"])
            #expect(wrong.status == .unauthorized)
            let scrape = try await client.execute(
                uri: "/metrics", method: .get, headers: [.authorization: "Bearer \(metricsToken)"])
            #expect(scrape.status == .ok)
            #expect(scrape.text.contains("standby_hub_health"))
        }
    }

    @Test("10: CSV cells that a spreadsheet would run as formulas are neutralised")
    func csvInjection() async throws {
        let standby = TestStandby()
        try await standby.run { client, _ in
            try await Self.queueOneResubmission(standby, client)
            let claim = try await client.send(
                .post, "/v1/resubmissions/claim", json: #"{"worker":"=HYPERLINK(\"https://evil.example\",\"x\")"}"#)
            #expect(claim.status == .ok)
            _ = try await client.send(.post, "/v1/deployments/foundry-prod/pause", json: #"{"reason":"@SUM(1+1)"}"#)
            let csv = try await client.get("/v1/events/export?format=csv").text
            let cells = Self.csvCells(csv)
            #expect(cells.contains { $0.hasPrefix("'=HYPERLINK") })
            #expect(cells.contains { $0 == "'@SUM(1+1)" } || csv.contains("@SUM(1+1)"))
            #expect(!cells.contains { ["=", "+", "-", "@", "\t", "\r"].contains($0.first.map(String.init) ?? "") })
        }
        #expect(EventExport.csvField("-1+2") == "'-1+2")
        #expect(EventExport.csvField("\tcmd") == "'\tcmd")
        #expect(EventExport.csvField("\rcmd") == "\"'\rcmd\"")
        #expect(EventExport.csvField("plain") == "plain")
    }

    /// Every cell of an RFC 4180 document, unquoted.
    static func csvCells(_ text: String) -> [String] {
        var cells: [String] = []
        var cell = ""
        var quoted = false
        var characters = Array(text.unicodeScalars)[...]
        while let character = characters.popFirst() {
            if quoted {
                if character == "\"" {
                    if characters.first == "\"" {
                        cell.unicodeScalars.append(characters.removeFirst())
                    } else {
                        quoted = false
                    }
                } else {
                    cell.unicodeScalars.append(character)
                }
            } else if character == "\"" {
                quoted = true
            } else if character == "," || character == "\n" {
                cells.append(cell)
                cell = ""
            } else if character != "\r" {
                cell.unicodeScalars.append(character)
            }
        }
        return cells
    }

    @Test("12: callers get generic details; impossible offsets and year 0000 are refused")
    func errorsAndTimestamps() async throws {
        var configured = TestStandby()
        configured.webhookTokensYAML = """
            ["${WEBHOOK_TOKEN}"]
              secureWebhook: { tenantId: \(TokenFactory.tenant), audience: "api://standby", jwks: "/nonexistent/jwks.json" }
            """
        let standby = configured
        try await standby.run { client, _ in
            let payload = Data(#"{"nope":1}"#.utf8).base64EncodedString()
            for garbage in ["eyJhbGciOiJSUzI1NiJ9.\(payload).c2ln", "not.a.jwt", "a.b"] {
                let response = try await client.execute(
                    uri: "/webhooks/azure-monitor", method: .post, headers: [.authorization: "Bearer \(garbage)"],
                    body: ByteBuffer(string: "{}"))
                #expect(response.status == .unauthorized)
                let detail = response.json["detail"]?.stringValue ?? ""
                #expect(
                    !detail.contains("DecodingError") && !detail.contains("JWT payload")
                        && !detail.contains("keyNotFound"))
            }
            for observed in ["2026-11-28T10:00:00+99:99", "0000-01-01T00:00:00Z", "2026-11-28T10:00:00+24:00"] {
                let response = try await client.send(
                    .post, "/v1/health-reports",
                    json: #"{"hub":"eastus-hub","source":"p","outcome":"failure","observedAt":"\#(observed)"}"#,
                    token: TestStandby.reporterToken)
                #expect(response.status == .unprocessableContent, "\(observed)")
            }
        }
        #expect(Timestamp.parse("2026-11-28T10:00:00+05:30") != nil)
    }

    @Test("12: logfmt escapes control characters, and values are bounded")
    func logfmt() {
        let line = StandbyLogHandler.render(
            [("msg", "request"), ("agent", "evil\u{1B}[2J\r\nlevel=error msg=forged\u{7F}")], as: .logfmt)
        #expect(!line.contains("\n") && !line.contains("\r") && !line.contains("\u{1B}") && !line.contains("\u{7F}"))
        #expect(line.contains(#"agent="evil\u001b[2J\r\nlevel=error msg=forged\u007f""#))
        let long = LogText.truncated(String(repeating: "x", count: 10_000))
        #expect(long.utf8.count < 600)
    }

    @Test("12: allowedSubscriptions applies to every stored delivery, recognised or not")
    func allowListEveryDelivery() async throws {
        var configured = TestStandby()
        configured.webhookTokensYAML = """
            ["${WEBHOOK_TOKEN}"]
              secureWebhook: { tenantId: \(TokenFactory.tenant), audience: "api://standby", jwks: "/nonexistent/jwks.json", allowedSubscriptions: ["11111111-1111-1111-1111-111111111111"] }
            """
        let standby = configured
        try await standby.run { client, _ in
            let unrecognized = try await client.postWebhook(Data(#"{"something":"else"}"#.utf8))
            #expect(unrecognized.status == .forbidden)
            let malformed = try await client.postWebhook(Data("{nope".utf8))
            #expect(malformed.status == .forbidden)
            let named = Data(
                #"{"resource":"/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/x"}"#.utf8)
            let allowed = try await client.postWebhook(named)
            #expect(allowed.status == .accepted)
        }
        let stored = try await standby.openDatabase().read { db in
            try Int.fetchOne(db, sql: "SELECT count(*) FROM deliveries")
        }
        #expect(stored == 1)
    }
}
