import AsyncHTTPClient
import Foundation
import GRDB
import NIOCore
import NIOHTTP1
import StandbyCore
import StandbyTestSupport
import Synchronization
import Testing

/// The `standby` executable built beside the test bundle, run as a real process.
struct StandbyProcess {
    static var binary: URL {
        var folder = URL(fileURLWithPath: CommandLine.arguments[0])
        while folder.pathComponents.count > 1, !FileManager.default.fileExists(atPath: folder.appendingPathComponent("standby").path) {
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
    @Test("SIGTERM under load: exit 0, and every request that got a 2xx is in the database")
    func gracefulShutdownUnderLoad() async throws {
        #expect(FileManager.default.isExecutableFile(atPath: StandbyProcess.binary.path), "build the standby executable first")
        let standby = TestStandby()
        let config = standby.folder.path("standby.yaml")
        try standby.yaml.write(toFile: config, atomically: true, encoding: .utf8)
        let server = try StandbyProcess(
            config: config, logPath: standby.folder.path("standby.log"), environment: ["WEBHOOK_TOKEN": TestStandby.webhookToken])
        let logPath = server.logPath
        let port = try await blocking { () -> Result<Int, any Error> in
            Result { try StandbyProcess.port(logPath: logPath, timeout: 20) }
        }.get()
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
                        essentials["alertId"] = .string("/subscriptions/s/providers/Microsoft.AlertsManagement/alerts/load-\(worker)-\(index)")
                        data["essentials"] = .object(essentials)
                        root["data"] = .object(data)
                        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/webhooks/azure-monitor?token=\(TestStandby.webhookToken)")
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
                            // Refused connections after shutdown are expected; keep trying until told to stop.
                            try? await Task.sleep(for: .milliseconds(5))
                        }
                    }
                }
            }
            group.addTask {
                // Shut down mid-load: once a fair number of deliveries were acknowledged (bounded wait).
                let deadline = ContinuousClock.now + .seconds(30)
                while load.acknowledged.withLock({ $0.count }) < 40, ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(20))
                }
                kill(pid, SIGTERM)
                while kill(pid, 0) == 0 { try await Task.sleep(for: .milliseconds(20)) }
                try await Task.sleep(for: .milliseconds(100))
                load.stop.withLock { $0 = true }
            }
            try await group.waitForAll()
        }
        try await client.shutdown()
        let process = server.process
        await blocking { process.waitUntilExit() }
        #expect(server.process.terminationStatus == 0)
        #expect(server.process.terminationReason == .exit)
        let ids = load.acknowledged.withLock { $0 }
        #expect(ids.count > 20, "the load produced too few requests to mean anything")
        let queue = try DatabaseQueue(path: standby.databasePath)
        let stored = try await queue.read { db in Set(try String.fetchAll(db, sql: "SELECT id FROM deliveries")) }
        let missing = ids.filter { !stored.contains($0) }
        #expect(missing.isEmpty, "\(missing.count) acknowledged deliveries are missing")
        let integrity = try await queue.read { db in try String.fetchOne(db, sql: "PRAGMA integrity_check") }
        #expect(integrity == "ok")
    }
}
