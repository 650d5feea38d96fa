import AsyncHTTPClient
import Foundation
import GRDB
import NIOCore
import NIOHTTP1
import StandbyCore
import StandbyPrimitives
import StandbyTestSupport
import Synchronization
import Testing

/// The `standby` executable built beside the test bundle, run as a real process.
/// `STANDBY_TEST_BINARY=$(scripts/build-release.sh) swift test --filter ProcessTests` runs the same tests
/// against the release build as it ships, whose optimiser the debug build does not exercise.
struct StandbyProcess {
    static var binary: URL {
        if let path = ProcessInfo.processInfo.environment["STANDBY_TEST_BINARY"], !path.isEmpty {
            return URL(fileURLWithPath: path)
        }
        var folder = URL(fileURLWithPath: CommandLine.arguments[0])
        while folder.pathComponents.count > 1,
            !FileManager.default.fileExists(atPath: folder.appendingPathComponent("standby").path)
        {
            folder.deleteLastPathComponent()
        }
        return folder.appendingPathComponent("standby")
    }

    let process = Process()
    let logPath: String

    /// Logs go to a file, so that a full pipe can never stall the server.
    init(config: String, logPath: String, environment: [String: String]) throws {
        self.logPath = logPath
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        process.executableURL = Self.binary
        process.arguments = ["serve", "--config", config]
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.standardOutput = FileHandle.nullDevice
        try process.run()
    }

    /// Waits for the "listening" log line and returns the port. Blocking: call it through `blocking`.
    static func port(logPath: String, timeout: TimeInterval) throws -> Int {
        let deadline = Date().addingTimeInterval(timeout)
        var text = ""
        while Date() < deadline {
            text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            if let range = text.range(of: #"listening on 127\.0\.0\.1:(\d+)"#, options: .regularExpression) {
                let match = text[range]
                if let port = Int(match.split(separator: ":").last ?? "") { return port }
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw StartFailure(log: text)
    }

    /// Writes `standby`'s configuration to its folder, starts the binary on it (logging to `log`
    /// there) and waits until it listens; returns the process and its port.
    static func start(_ standby: TestStandby, log: String) async throws -> (StandbyProcess, Int) {
        let config = standby.folder.path("standby.yaml")
        try standby.yaml.write(toFile: config, atomically: true, encoding: .utf8)
        let server = try StandbyProcess(
            config: config, logPath: standby.folder.path(log), environment: ["WEBHOOK_TOKEN": TestStandby.webhookToken])
        let logPath = server.logPath
        let port = try await blocking { () -> Result<Int, any Error> in
            Result { try StandbyProcess.port(logPath: logPath, timeout: 30) }
        }.get()
        return (server, port)
    }

    struct StartFailure: Error, CustomStringConvertible {
        var log: String
        var description: String { "standby did not start:\n\(log)" }
    }
}

final class LoadState: Sendable {
    let acknowledged = Mutex<[String]>([])
    let stop = Mutex(false)
}

@Suite("The standby process")
struct ProcessTests {
    /// Runs 8 webhook workers and a prober against a live process, sends `signal` once `threshold`
    /// deliveries were acknowledged, and returns the acknowledged delivery ids.
    func loadAndSignal(
        _ standby: TestStandby, server: StandbyProcess, port: Int, threshold: Int, signal: Int32
    ) async throws -> [String] {
        let template = try Fixtures.json("test-action-metric-static.json")
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        let load = LoadState()
        let pid = server.process.processIdentifier
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<8 {
                group.addTask {
                    var index = 0
                    while !load.stop.withLock({ $0 }) {
                        index += 1
                        guard case .object(var root) = template, case .object(var data)? = root["data"],
                            case .object(var essentials)? = data["essentials"]
                        else { return }
                        essentials["alertId"] = .string(
                            "/subscriptions/s/providers/Microsoft.AlertsManagement/alerts/load-\(worker)-\(index)-\(threshold)"
                        )
                        data["essentials"] = .object(essentials)
                        root["data"] = .object(data)
                        var request = HTTPClientRequest(
                            url: "http://127.0.0.1:\(port)/webhooks/azure-monitor?token=\(TestStandby.webhookToken)")
                        request.method = .POST
                        request.body = .bytes(ByteBuffer(bytes: JSONValue.object(root).canonicalData()))
                        do {
                            let response = try await client.execute(request, timeout: .seconds(2))
                            let body = try await response.body.collect(upTo: 1 << 20)
                            if (200..<300).contains(response.status.code),
                                let id = try? JSONValue.decode(Data(body.readableBytesView))["deliveryId"]?.stringValue
                            {
                                load.acknowledged.withLock { $0.append(id) }
                            }
                        } catch {
                            try? await Task.sleep(for: .milliseconds(5))
                        }
                    }
                }
            }
            // The primary's probe fails throughout: one failover is decided somewhere in the load.
            group.addTask {
                while !load.stop.withLock({ $0 }) {
                    var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/v1/health-reports")
                    request.method = .POST
                    request.headers.add(name: "Authorization", value: "Bearer \(TestStandby.reporterToken)")
                    let observed = Timestamp.format(Date())
                    request.body = .bytes(
                        ByteBuffer(
                            string:
                                #"{"hub":"eastus-hub","source":"p","outcome":"failure","observedAt":"\#(observed)"}"#))
                    _ = try? await client.execute(request, timeout: .seconds(2))
                    try? await Task.sleep(for: .milliseconds(10))
                }
            }
            group.addTask {
                let deadline = ContinuousClock.now + .seconds(30)
                while load.acknowledged.withLock({ $0.count }) < threshold, ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(5))
                }
                kill(pid, signal)
                while kill(pid, 0) == 0 { try await Task.sleep(for: .milliseconds(20)) }
                try await Task.sleep(for: .milliseconds(100))
                load.stop.withLock { $0 = true }
            }
            try await group.waitForAll()
        }
        try await client.shutdown()
        let process = server.process
        await blocking { process.waitUntilExit() }
        return load.acknowledged.withLock { $0 }
    }

    func start(_ standby: TestStandby, log: String) async throws -> (StandbyProcess, Int) {
        try await StandbyProcess.start(standby, log: log)
    }

    func checkDatabase(_ standby: TestStandby, acknowledged: [String], failovers: Int? = nil) async throws {
        let queue = try DatabaseQueue(path: standby.databasePath)
        let stored = try await queue.read { db in Set(try String.fetchAll(db, sql: "SELECT id FROM deliveries")) }
        let missing = acknowledged.filter { !stored.contains($0) }
        #expect(missing.isEmpty, "\(missing.count) acknowledged deliveries are missing")
        let integrity = try await queue.read { db in try String.fetchOne(db, sql: "PRAGMA integrity_check") }
        #expect(integrity == "ok")
        let routes = try await queue.read { db in
            try Int.fetchOne(db, sql: "SELECT count(*) FROM commands WHERE kind = 'route_traffic'") ?? 0
        }
        #expect(routes <= 1, "a failover command was emitted \(routes) times")
        if let failovers { #expect(routes == failovers) }
    }

    @Test("SIGTERM under load: exit 0, and every request that got a 2xx is in the database")
    func gracefulShutdownUnderLoad() async throws {
        #expect(
            FileManager.default.isExecutableFile(atPath: StandbyProcess.binary.path),
            "build the standby executable first")
        let standby = TestStandby()
        let (server, port) = try await start(standby, log: "standby.log")
        let acknowledged = try await loadAndSignal(standby, server: server, port: port, threshold: 40, signal: SIGTERM)
        #expect(server.process.terminationStatus == 0)
        #expect(server.process.terminationReason == .exit)
        #expect(acknowledged.count >= 40, "the load produced too few requests to mean anything")
        try await checkDatabase(standby, acknowledged: acknowledged)
    }

    @Test(
        "SIGKILL mid-load, at several points: after a restart every 2xx'd delivery is there, the file is intact, no failover twice",
        arguments: [10, 60, 150])
    func crashSafety(killAfter: Int) async throws {
        let standby = TestStandby()
        let (server, port) = try await start(standby, log: "first.log")
        let acknowledged = try await loadAndSignal(
            standby, server: server, port: port, threshold: killAfter, signal: SIGKILL)
        #expect(server.process.terminationReason == .uncaughtSignal)
        #expect(acknowledged.count >= killAfter)
        // Restart on the same file: recovery, migrations and decisions resume; then stop cleanly.
        let (restarted, restartedPort) = try await start(standby, log: "second.log")
        let after = try await loadAndSignal(
            standby, server: restarted, port: restartedPort, threshold: 40, signal: SIGTERM)
        #expect(restarted.process.terminationStatus == 0)
        // The prober failed the primary throughout: exactly one failover, across the crash.
        try await checkDatabase(standby, acknowledged: acknowledged + after, failovers: 1)
    }
}
