import AsyncHTTPClient
import ConfigReading
import Foundation
import GRDB
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import StandbyCore
import StandbyPrimitives
import StandbyProbe
import StandbyTestSupport
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A stand-in hub endpoint on loopback that answers 200, 503, redirects or hangs, as the test says.
final class TargetServer: Sendable {
    enum Mode: Sendable {
        case healthy
        case failing
        case hanging
        case redirecting
    }

    private let state = Mutex((mode: Mode.healthy, requests: 0))
    var requests: Int { state.withLock { $0.requests } }
    func set(_ mode: Mode) { state.withLock { $0.mode = mode } }

    func application() -> some ApplicationProtocol {
        let router = Router()
        router.get("health") { _, _ -> Response in
            let mode = self.state.withLock { state -> Mode in
                state.requests += 1
                return state.mode
            }
            switch mode {
            case .healthy: return Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: "all ok")))
            case .failing: return Response(status: .serviceUnavailable)
            case .hanging:
                try await Task.sleep(for: .seconds(5))
                return Response(status: .ok)
            case .redirecting: return Response(status: .found, headers: [.location: "/elsewhere"])
            }
        }
        router.get("elsewhere") { _, _ in Response(status: .ok) }
        var logger = Logger(label: "target")
        logger.logLevel = .critical
        return Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)), logger: logger)
    }
}

/// A port nothing listens on (bound, read, released).
func unusedPort() -> Int {
    let listener = TCPListener()
    defer { listener.close() }
    return listener.port
}

/// A listening TCP socket that never accepts: the kernel completes connections to it by itself, so a
/// TCP check of it succeeds however loaded the test process is; once closed, checks are refused.
final class TCPListener: @unchecked Sendable {
    private var descriptor: Int32
    let port: Int

    init() {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(descriptor, pointer, length)
                return getsockname(descriptor, pointer, &length)
            }
        }
        listen(descriptor, 1024)
        self.descriptor = descriptor
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    func close() {
        guard descriptor >= 0 else { return }
        Glibc.close(descriptor)
        descriptor = -1
    }

    deinit { close() }
}

@Suite("standby probe")
struct ProbeTests {
    static let token = TestStandby.reporterToken

    func target(_ url: String, timeout: TimeInterval = 5, followRedirects: Bool = false, bodyContains: String? = nil)
        -> ProbeTarget
    {
        ProbeTarget(
            hub: "eastus-hub",
            check: .http(url: url, method: .GET, expectedStatus: [.init(200, 299)], bodyContains: bodyContains),
            timeout: timeout, interval: 1, followRedirects: followRedirects)
    }

    func check(_ target: ProbeTarget) async throws -> CheckResult {
        let checker = try TargetChecker(target: target)
        let result = await checker.run()
        await checker.shutdown()
        return result
    }

    @Test("a check reports its outcome, status, latency and a short detail: 200, 503, a hang, a refusal, a redirect")
    func checks() async throws {
        let server = TargetServer()
        try await server.application().test(.live) { client in
            let base = "http://127.0.0.1:\(try #require(client.port))"
            let started = Date()
            let healthy = try await check(target("\(base)/health", bodyContains: "ok"))
            #expect(healthy.success && healthy.statusCode == 200 && healthy.detail == "200", "\(healthy)")
            #expect(healthy.observedAt >= started && healthy.latencyMs > 0)
            let wrongBody = try await check(target("\(base)/health", bodyContains: "degraded"))
            #expect(!wrongBody.success && wrongBody.detail.contains("body lacks"))
            server.set(.failing)
            let failing = try await check(target("\(base)/health"))
            #expect(!failing.success && failing.statusCode == 503 && failing.detail == "503")
            server.set(.hanging)
            let hanging = try await check(target("\(base)/health", timeout: 0.5))
            #expect(!hanging.success && hanging.detail == "timeout after 0.5s", "\(hanging.detail)")
            #expect(hanging.latencyMs < 3000)
            server.set(.redirecting)
            let redirected = try await check(target("\(base)/health"))
            #expect(!redirected.success && redirected.statusCode == 302)
            let followed = try await check(target("\(base)/health", followRedirects: true))
            #expect(followed.success && followed.statusCode == 200)
        }
        let refused = try await check(target("http://127.0.0.1:\(unusedPort())/health"))
        #expect(!refused.success && refused.detail == "connection refused", "\(refused.detail)")
    }

    @Test("TCP checks: an open port connects, a closed one is refused")
    func tcpChecks() async throws {
        let server = TargetServer()
        try await server.application().test(.live) { client in
            let open = try await check(
                ProbeTarget(
                    hub: "westus-hub", check: .tcp(host: "127.0.0.1", port: try #require(client.port)), timeout: 5))
            #expect(open.success && open.detail == "connected")
        }
        let closed = try await check(
            ProbeTarget(hub: "westus-hub", check: .tcp(host: "127.0.0.1", port: unusedPort()), timeout: 5))
        #expect(!closed.success && closed.detail == "connection refused", "\(closed.detail)")
    }

    @Test("the buffer keeps observedAt order, is bounded, and drops (and counts) the oldest first")
    func buffer() {
        let buffer = ReportBuffer(capacity: 3)
        func result(_ second: TimeInterval) -> CheckResult {
            CheckResult(
                hub: "h", target: "t", observedAt: Date(timeIntervalSince1970: second), success: false, latencyMs: 1,
                statusCode: nil, detail: "")
        }
        buffer.add(result(10))
        buffer.add(result(30))
        buffer.add(result(20))  // a slow check that started earlier finishes later
        #expect(buffer.oldest(10).map(\.result.observedAt.timeIntervalSince1970) == [10, 20, 30])
        #expect(buffer.add(result(40)) == 1)
        #expect(buffer.oldest(10).map(\.result.observedAt.timeIntervalSince1970) == [20, 30, 40])
        #expect(buffer.dropped == 1)
        let inFlight = buffer.oldest(2)
        buffer.add(result(50))
        buffer.remove(inFlight)
        #expect(buffer.oldest(10).map(\.result.observedAt.timeIntervalSince1970) == [40, 50])
    }

    @Test("backoff grows exponentially with jitter, is capped, and honours Retry-After")
    func backoff() {
        #expect(ReportSender.backoff(failures: 1, retryAfter: nil, random: 1) == 0.5)
        #expect(ReportSender.backoff(failures: 4, retryAfter: nil, random: 1) == 4)
        #expect(ReportSender.backoff(failures: 4, retryAfter: nil, random: 0) == 2)
        #expect(ReportSender.backoff(failures: 40, retryAfter: nil, random: 1) == ReportSender.maximumBackoff)
        #expect(ReportSender.backoff(failures: 1, retryAfter: 7, random: 1) == 7)
    }

    @Test("the configuration is checked like the server's, with key paths and bounds")
    func configuration() throws {
        let good = try ProbeConfigLoader.load(
            file: DeployKitTests.root.appendingPathComponent("deploy/probe.example.yaml").path,
            environment: ["STANDBY_PROBE_TOKEN": Self.token])
        #expect(good.source == "probe-westeurope" && good.targets.count == 3 && good.standby.urls.count == 1)
        let bad = """
            standby: { urls: ["http://standby.example"], token: short, batchSize: 0 }
            defaults: { interval: inf }
            targets:
              - { hub: eastus-hub, url: "ftp://x", expectedStatus: ["abc"] }
              - { hub: westus-hub, tcp: "nohost" }
              - { hub: westus-hub, url: "https://x", timeout: 30s, interval: 10s }
              - { url: "https://x" }
            """
        var paths: [String] = []
        do {
            _ = try ProbeConfigLoader.parse(bad, environment: [:])
        } catch let error as ConfigError {
            paths = error.problems.map(\.path)
        }
        for path in [
            "source", "standby.urls[0]", "standby.token", "standby.batchSize", "defaults.interval", "targets[0].url",
            "targets[0].expectedStatus[0]", "targets[1].tcp", "targets[2].timeout", "targets[3].hub",
        ] {
            #expect(paths.contains(path), "\(path) not reported: \(paths)")
        }
    }

    /// A probe of eastus-hub reporting to `standbyPorts`: `target` is `url: "..."` or `tcp: "host:port"`.
    func probeYAML(standbyPorts: [Int], target: String, interval: String = "300ms") -> String {
        """
        source: probe-test
        standby:
          urls: [\(standbyPorts.map { "\"http://127.0.0.1:\($0)\"" }.joined(separator: ", "))]
          token: "\(Self.token)"
          allowPlainHTTP: true
          timeout: 1s
          flushInterval: 100ms
        listen: { host: 127.0.0.1, port: 0 }
        logging: { level: debug }
        targets:
          - { hub: eastus-hub, \(target), interval: \(interval), timeout: 250ms }
        """
    }

    /// Starts `standby probe` on `yaml`; the process, and its log's path.
    func startProbe(_ folder: TemporaryFolder, _ yaml: String) throws -> (Process, String) {
        let config = folder.path("probe.yaml")
        try yaml.write(toFile: config, atomically: true, encoding: .utf8)
        let log = folder.path("probe.log")
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let process = Process()
        process.executableURL = StandbyProcess.binary
        process.arguments = ["probe", "--config", config]
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        return (process, log)
    }

    func failoverEvents(port: Int) async throws -> [JSONValue] {
        try await FreshConnection.execute(
            port: port, .get, "/v1/failover-events", headers: [.authorization: "Bearer \(TestStandby.readerToken)"]
        ).json["items"]?.arrayValue ?? []
    }

    @Test("a failing primary, probed for real: Standby fails over once, from reports with the probe's observedAt")
    func liveFailover() async throws {
        let target = TargetServer()
        target.set(.failing)
        try await target.application().test(.live) { targetClient in
            let targetURL = "http://127.0.0.1:\(try #require(targetClient.port))/health"
            let standby = TestStandby()
            let (server, port) = try await StandbyProcess.start(standby, log: "standby.log")
            defer {
                kill(server.process.processIdentifier, SIGKILL)
                server.process.waitUntilExit()
            }
            // The first URL refuses connections: the probe moves on to the next.
            let (probe, _) = try startProbe(
                standby.folder, probeYAML(standbyPorts: [unusedPort(), port], target: "url: \"\(targetURL)\""))
            defer {
                kill(probe.processIdentifier, SIGTERM)
                probe.waitUntilExit()
            }
            var events: [JSONValue] = []
            for _ in 0..<100 where events.isEmpty {
                try await Task.sleep(for: .milliseconds(100))
                events = try await failoverEvents(port: port)
            }
            #expect(events.count == 1)
            #expect(events.first?["toHub"] == .string("westus-hub"))
            try await Task.sleep(for: .seconds(1))
            #expect(try await failoverEvents(port: port).count == 1)
        }
    }

    @Test("Standby away while the primary fails: buffered reports arrive late, in observedAt order, and decide as live")
    func bufferedWhileStandbyIsAway() async throws {
        // A TCP check: its outcome does not depend on how busy the test process is.
        let primary = TCPListener()
        do {
            var configured = TestStandby()
            configured.port = unusedPort()
            let standby = configured
            let (probe, probeLog) = try startProbe(
                standby.folder,
                probeYAML(standbyPorts: [standby.port], target: "tcp: \"127.0.0.1:\(primary.port)\"", interval: "500ms")
            )
            defer {
                kill(probe.processIdentifier, SIGTERM)
                probe.waitUntilExit()
            }
            // Live first: the primary is healthy and its reports arrive as they are made.
            let (first, _) = try await StandbyProcess.start(standby, log: "first.log")
            try await Task.sleep(for: .seconds(1.5))
            kill(first.process.processIdentifier, SIGKILL)
            first.process.waitUntilExit()
            // Standby is away for 4 s while the primary fails; the probe keeps checking and buffers.
            primary.close()
            let failingSince = Date()
            try await Task.sleep(for: .seconds(4))
            let (server, port) = try await StandbyProcess.start(standby, log: "second.log")
            defer {
                kill(server.process.processIdentifier, SIGKILL)
                server.process.waitUntilExit()
            }
            var events: [JSONValue] = []
            for _ in 0..<150 where events.isEmpty {
                try await Task.sleep(for: .milliseconds(100))
                events = try await failoverEvents(port: port)
            }
            #expect(events.count == 1, "\((try? String(contentsOfFile: probeLog, encoding: .utf8)) ?? "")")
            #expect(events.first?["toHub"] == .string("westus-hub"))
            let queue = try DatabaseQueue(path: standby.databasePath)
            let (observed, failures) = try await queue.read { db in
                (
                    try String.fetchAll(db, sql: "SELECT observed_at FROM health_reports ORDER BY seq"),
                    try String.fetchAll(
                        db, sql: "SELECT observed_at FROM health_reports WHERE outcome = 'failure' ORDER BY seq")
                )
            }
            // Stored in the order they were observed, the failures observed while Standby was away.
            #expect(observed == observed.sorted())
            #expect(
                failures.count >= 6, "\(observed) \((try? String(contentsOfFile: probeLog, encoding: .utf8)) ?? "")")
            let firstFailure = try #require(failures.first.flatMap(Timestamp.parse))
            #expect(firstFailure.timeIntervalSince(failingSince) < 1.5)
            // The window opened where the failures began, as it would have live, not when they arrived.
            let windows =
                try await FreshConnection.execute(
                    port: port, .get, "/v1/failure-windows?hub=eastus-hub",
                    headers: [.authorization: "Bearer \(TestStandby.readerToken)"]
                ).json["items"]?.arrayValue ?? []
            #expect(
                windows.first?["firstFailureAt"]?.stringValue == failures.first,
                "\(windows) \(observed) \((try? String(contentsOfFile: probeLog, encoding: .utf8)) ?? "")")
        }
    }
}
