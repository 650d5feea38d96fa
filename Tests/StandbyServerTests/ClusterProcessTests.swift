import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import StandbyCore
import StandbyPrimitives
import StandbyTestSupport
import Testing

/// A private PostgreSQL server of one test (`scripts/postgres.sh`), for what must not touch the
/// server the other tests share: stopping it, killing it, a streaming standby.
final class PrivatePostgres: Sendable {
    let folder: String

    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("scripts/postgres.sh").path

    init() async throws {
        folder = NSTemporaryDirectory() + "standby-pg-" + UUID().uuidString
        try await Self.run("start", folder)
    }

    var port: Int { Int((try? String(contentsOfFile: folder + "/port", encoding: .utf8))?.trimmed ?? "") ?? 0 }

    /// Runs `scripts/postgres.sh ARGS`, throwing with its output when it fails; returns its standard output.
    @discardableResult
    static func run(_ arguments: String...) async throws -> String {
        let arguments = arguments
        return try await blocking { () -> Result<String, any Error> in
            Result { try spawnAndWait(["/bin/bash", script] + arguments) }
        }.get()
    }

    /// posix_spawn and waitpid: Foundation's `Process` did not see this script exit once it had
    /// started a server in the background. Output goes to a file (a pipe could be held open by
    /// the server).
    private static func spawnAndWait(_ argv: [String]) throws -> String {
        let outputPath = NSTemporaryDirectory() + "postgres-sh-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: outputPath) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let cArguments = argv.map { strdup($0) } + [nil]
        defer { for argument in cArguments { free(argument) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, argv[0], &actions, nil, cArguments, environ)
        guard spawned == 0 else { throw ScriptFailure(description: "cannot run \(argv[0]): errno \(spawned)") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        let text = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        // WIFEXITED && WEXITSTATUS == 0, spelled out (the C macros do not import).
        guard status & 0x7f == 0, (status >> 8) & 0xff == 0 else {
            throw ScriptFailure(description: "postgres.sh \(argv.dropFirst(2).joined(separator: " ")): \(text)")
        }
        return text
    }

    struct ScriptFailure: Error, CustomStringConvertible {
        var description: String
    }

    func stop() async {
        _ = try? await Self.run("stop", folder)
    }

    /// Runs `body` with a server of its own, stopped and removed afterwards whatever happens.
    static func with<T>(_ body: (PrivatePostgres) async throws -> T) async throws -> T {
        let postgres = try await PrivatePostgres()
        do {
            let value = try await body(postgres)
            await postgres.stop()
            return value
        } catch {
            await postgres.stop()
            throw error
        }
    }
}

extension String {
    var trimmed: String { trimmingCharacters(in: .whitespacesAndNewlines) }
}

/// Several `standby` processes on one PostgreSQL database, as instances in three regions run.
struct StandbyCluster {
    var template: TestStandby
    var servers: [StandbyProcess] = []
    var ports: [Int] = []

    /// Starts `count` instances named i0, i1, ... on `databaseURL`, with a short leader lease.
    static func start(
        _ count: Int, databaseURL: String, template: TestStandby = TestStandby(), leaseTTL: String = "2s",
        extraYAML: String = ""
    ) async throws -> StandbyCluster {
        var cluster = StandbyCluster(template: template)
        for index in 0..<count {
            var standby = template
            standby.databaseURL = databaseURL
            standby.extraYAML =
                "cluster: { instance: i\(index), region: region-\(index), leaseTTL: \(leaseTTL) }\n" + extraYAML
            let config = template.folder.path("standby-i\(index).yaml")
            try standby.yaml.write(toFile: config, atomically: true, encoding: .utf8)
            let server = try StandbyProcess(
                config: config, logPath: template.folder.path("i\(index).log"),
                environment: ["WEBHOOK_TOKEN": TestStandby.webhookToken])
            let logPath = server.logPath
            let port = try await blocking { () -> Result<Int, any Error> in
                Result { try StandbyProcess.port(logPath: logPath, timeout: 60) }
            }.get()
            cluster.servers.append(server)
            cluster.ports.append(port)
        }
        return cluster
    }

    func stop() {
        for server in servers where server.process.isRunning {
            kill(server.process.processIdentifier, SIGCONT)
            server.process.terminate()
            server.process.waitUntilExit()
        }
    }

    func log(_ index: Int) -> String {
        (try? String(contentsOfFile: servers[index].logPath, encoding: .utf8)) ?? ""
    }

    func get(_ index: Int, _ uri: String, token: String = TestStandby.operatorToken) async throws
        -> FreshConnection.Response
    {
        try await FreshConnection.execute(port: ports[index], .get, uri, headers: [.authorization: "Bearer \(token)"])
    }

    func post(_ index: Int, _ uri: String, json: String, token: String = TestStandby.operatorToken) async throws
        -> FreshConnection.Response
    {
        try await FreshConnection.execute(
            port: ports[index], .post, uri,
            headers: [.authorization: "Bearer \(token)", .contentType: "application/json"], body: Data(json.utf8))
    }

    /// A probe report of `hub` observed `secondsAgo` before now (the processes run on the real clock).
    func report(_ index: Int, hub: String = "eastus-hub", outcome: String = "failure", secondsAgo: Double) async throws
        -> FreshConnection.Response
    {
        let observed = Timestamp.format(Date().addingTimeInterval(-secondsAgo))
        return try await post(
            index, "/v1/health-reports",
            json: #"{"hub":"\#(hub)","source":"probe-westeurope","outcome":"\#(outcome)","observedAt":"\#(observed)"}"#,
            token: TestStandby.reporterToken)
    }

    /// The instance that leads, as instance `index` sees it, and its epoch.
    func leader(seenFrom index: Int) async throws -> (id: String, epoch: Int)? {
        let view = try await get(index, "/v1/cluster").json
        guard let id = view["leader"]?["instance"]?.stringValue, let epoch = view["leader"]?["epoch"]?.doubleValue,
            view["instances"]?.arrayValue?.contains(where: {
                $0["id"]?.stringValue == id && $0["leader"] == .bool(true)
            }) == true
        else { return nil }
        return (id, Int(epoch))
    }

    /// Polls `condition` every 100 ms until it holds or `timeout` passes; returns whether it held.
    static func eventually(timeout: Duration, _ condition: () async throws -> Bool) async rethrows -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await condition() { return true }
            try? await Task.sleep(for: .milliseconds(100))
        }
        return try await condition()
    }
}

@Suite("Several instances on one PostgreSQL database", .serialized)
struct ClusterProcessTests {
    @Test("the same delivery at three instances at once: one alert, two counted duplicates")
    func duplicateDeliveryAcrossInstances() async throws {
        let cluster = try await StandbyCluster.start(3, databaseURL: try await PostgresTestServer.freshDatabaseURL())
        defer { cluster.stop() }
        let body = try Fixtures.data("test-action-metric-static.json")
        let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
            for index in 0..<3 {
                group.addTask { try await FreshConnection.postWebhook(port: cluster.ports[index], body).status.code }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(statuses == [200, 200, 200])
        for index in 0..<3 {
            let alerts = try await cluster.get(index, "/v1/alerts").json["items"]?.arrayValue ?? []
            #expect(alerts.count == 1)
            #expect(alerts.first?["deliveryCount"] == .number(3))
            #expect(alerts.first?["duplicateCount"] == .number(2))
        }
        let view = try await cluster.get(0, "/v1/cluster").json
        #expect(view["backend"] == .string("postgres"))
        #expect(Set(view["instances"]?.arrayValue?.compactMap { $0["id"]?.stringValue } ?? []) == ["i0", "i1", "i2"])
        #expect(view["instances"]?.arrayValue?.filter { $0["leader"] == .bool(true) }.count == 1)
    }

    @Test("threshold-crossing reports spread over three instances: exactly one failover, guardrails counted once")
    func spreadReportsGiveOneFailover() async throws {
        let cluster = try await StandbyCluster.start(3, databaseURL: try await PostgresTestServer.freshDatabaseURL())
        defer { cluster.stop() }
        // Nine failures, three to each instance at once, twice over: one failover only.
        for round in 0..<2 {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<9 {
                    group.addTask {
                        let response = try await cluster.report(
                            index % 3, secondsAgo: Double(20 - round * 9 - index) / 2)
                        #expect(response.status.code == 202 || response.status.code == 200)
                    }
                }
                try await group.waitForAll()
            }
        }
        for index in 0..<3 {
            let events = try await cluster.get(index, "/v1/failover-events").json["items"]?.arrayValue ?? []
            #expect(events.count == 1)
            #expect(events.first?["kind"] == .string("failover"))
            let deployment = try await cluster.get(index, "/v1/deployments/foundry-prod").json
            #expect(deployment["serving"] == .strings(["westus-hub"]))
        }
        let verified = try await cluster.get(0, "/v1/events?limit=1000").json["items"]?.arrayValue ?? []
        // One chain: every instance's events numbered without gaps.
        let seqs = verified.compactMap { $0["seq"]?.doubleValue }.map { Int($0) }
        #expect(seqs == Array(1...seqs.count))
    }

    @Test(
        "SIGKILL of the leader while commands are pushed: another takes over with a higher epoch, every command arrives"
    )
    func leaderKilledWhileDispatching() async throws {
        let receiver = Receiver(failures: 3)
        try await receiver.application().test(.live) { receiverClient in
            let receiverPort = try #require(receiverClient.port)
            let template = DispatchTests().makeStandby(port: receiverPort)
            let cluster = try await StandbyCluster.start(
                3, databaseURL: try await PostgresTestServer.freshDatabaseURL(), template: template,
                extraYAML: "dispatch: { baseBackoff: 0.2s, maxBackoff: 0.5s, pollInterval: 0.2s, maxAttempts: 50 }\n")
            defer { cluster.stop() }
            let first = try #require(
                try await StandbyCluster.eventually(timeout: .seconds(10)) {
                    try await cluster.leader(seenFrom: 0) != nil
                } ? cluster.leader(seenFrom: 0) : nil)
            for offset in [3.0, 2, 1] { _ = try await cluster.report(0, secondsAgo: offset) }
            // The leader has tried (and failed) at least once: kill it mid-dispatch.
            #expect(await StandbyCluster.eventually(timeout: .seconds(10)) { !receiver.received.isEmpty })
            let leaderIndex = try #require(Int(first.id.dropFirst()))
            kill(cluster.servers[leaderIndex].process.processIdentifier, SIGKILL)
            let survivor = (leaderIndex + 1) % 3
            let event = try #require(
                (try await cluster.get(survivor, "/v1/failover-events").json["items"]?.arrayValue)?.first)
            let commandIds = Set(event["commands"]?.arrayValue?.compactMap { $0["id"]?.stringValue } ?? [])
            #expect(commandIds.count >= 2)
            #expect(
                await StandbyCluster.eventually(timeout: .seconds(30)) {
                    receiver.uniqueAccepted.isSuperset(of: commandIds)
                })
            let next = try #require(try await cluster.leader(seenFrom: survivor))
            #expect(next.id != first.id)
            #expect(next.epoch > first.epoch)
            // Pushes name the epoch they were made under; the new leader's carry its own.
            #expect(receiver.received.contains { $0.epoch == next.epoch })
            #expect(receiver.received.allSatisfy { $0.epoch != nil })
        }
    }

    @Test(
        "SIGSTOP of the leader past its lease, then SIGCONT: another leads with a higher epoch, the old one steps down")
    func pausedLeaderStepsDown() async throws {
        let cluster = try await StandbyCluster.start(3, databaseURL: try await PostgresTestServer.freshDatabaseURL())
        defer { cluster.stop() }
        #expect(
            try await StandbyCluster.eventually(timeout: .seconds(10)) { try await cluster.leader(seenFrom: 0) != nil })
        let first = try #require(try await cluster.leader(seenFrom: 0))
        let paused = try #require(Int(first.id.dropFirst()))
        let pid = cluster.servers[paused].process.processIdentifier
        kill(pid, SIGSTOP)
        let other = (paused + 1) % 3
        #expect(
            try await StandbyCluster.eventually(timeout: .seconds(10)) {
                try await cluster.leader(seenFrom: other).map { $0.id != first.id && $0.epoch > first.epoch } ?? false
            })
        kill(pid, SIGCONT)
        #expect(
            await StandbyCluster.eventually(timeout: .seconds(10)) {
                cluster.log(paused).contains("this instance no longer leads")
            })
        let after = try #require(try await cluster.leader(seenFrom: paused))
        #expect(after.id != first.id)
        #expect(after.epoch > first.epoch)
    }

    @Test("concurrent claims from workers on different instances never share an item")
    func claimsAcrossInstances() async throws {
        let cluster = try await StandbyCluster.start(3, databaseURL: try await PostgresTestServer.freshDatabaseURL())
        defer { cluster.stop() }
        for job in 0..<30 {
            let response = try await cluster.post(
                job % 3, "/v1/jobs", json: #"{"externalId":"train-\#(job)","hub":"eastus-hub","spec":{"n":\#(job)}}"#)
            #expect(response.status.code == 201)
        }
        for offset in [3.0, 2, 1] { _ = try await cluster.report(0, secondsAgo: offset) }
        let claimed = try await withThrowingTaskGroup(of: [String].self) { group in
            for worker in 0..<6 {
                group.addTask {
                    var mine: [String] = []
                    for _ in 0..<10 {
                        let items =
                            try await cluster.post(
                                worker % 3, "/v1/resubmissions/claim",
                                json: #"{"worker":"w\#(worker)","limit":3,"leaseSeconds":60}"#
                            ).json["items"]?.arrayValue ?? []
                        mine += items.compactMap { $0["id"]?.stringValue }
                    }
                    return mine
                }
            }
            return try await group.reduce(into: [String]()) { $0 += $1 }
        }
        #expect(claimed.count == 30)
        #expect(Set(claimed).count == claimed.count)
    }

    @Test(
        "PostgreSQL stopped for 10 s: writes are 503 with Retry-After and /readyz unready, then recovery without restart"
    )
    func databaseOutage() async throws {
        try await PrivatePostgres.with { postgres in try await outage(postgres) }
    }

    private func outage(_ postgres: PrivatePostgres) async throws {
        let url = "postgres://standby@127.0.0.1:\(postgres.port)/standby?sslmode=disable"
        let cluster = try await StandbyCluster.start(1, databaseURL: url)
        defer { cluster.stop() }
        let before = try await cluster.report(0, secondsAgo: 30)
        #expect(before.status.code == 202 || before.status.code == 200)
        try await PrivatePostgres.run("pause", postgres.folder)
        let stopped = ContinuousClock.now
        let during = try await cluster.report(0, secondsAgo: 20)
        #expect(during.status == .serviceUnavailable)
        #expect(during.headers[.retryAfter] != nil)
        #expect(
            try await StandbyCluster.eventually(timeout: .seconds(5)) {
                try await FreshConnection.execute(port: cluster.ports[0], .get, "/readyz").status == .serviceUnavailable
            })
        try await Task.sleep(until: stopped + .seconds(10))
        try await PrivatePostgres.run("resume", postgres.folder)
        #expect(
            try await StandbyCluster.eventually(timeout: .seconds(20)) {
                let after = try await cluster.report(0, secondsAgo: 10)
                return after.status.code == 202 || after.status.code == 200
            })
        #expect(
            try await StandbyCluster.eventually(timeout: .seconds(10)) {
                try await FreshConnection.execute(port: cluster.ports[0], .get, "/readyz").status == .ok
            })
        #expect(cluster.servers[0].process.isRunning)
    }

    @Test(
        "a primary and a synchronous streaming standby in the host list: kill the primary, promote the standby, nothing acknowledged is lost"
    )
    func followsPromotedStandby() async throws {
        try await PrivatePostgres.with { primary in
            let replicaFolder = NSTemporaryDirectory() + "standby-pg-replica-" + UUID().uuidString
            do {
                try await promotion(primary, replicaFolder: replicaFolder)
            } catch {
                _ = try? await PrivatePostgres.run("stop", replicaFolder)
                throw error
            }
            _ = try? await PrivatePostgres.run("stop", replicaFolder)
        }
    }

    private func promotion(_ primary: PrivatePostgres, replicaFolder: String) async throws {
        let replicaPort = try await PrivatePostgres.run("replica", primary.folder, replicaFolder).trimmed
        let url = "postgres://standby@127.0.0.1:\(primary.port),127.0.0.1:\(replicaPort)/standby?sslmode=disable"
        let cluster = try await StandbyCluster.start(1, databaseURL: url)
        defer { cluster.stop() }
        let template = try Fixtures.json("test-action-metric-static.json")
        func delivery(_ index: Int) -> Data {
            guard case .object(var root) = template, case .object(var data)? = root["data"],
                case .object(var essentials)? = data["essentials"]
            else { return Data() }
            essentials["alertId"] = .string("/subscriptions/s/providers/Microsoft.AlertsManagement/alerts/ha-\(index)")
            data["essentials"] = .object(essentials)
            root["data"] = .object(data)
            return JSONValue.object(root).canonicalData()
        }
        var acknowledged: [String] = []
        for index in 0..<20 {
            let response = try await FreshConnection.postWebhook(port: cluster.ports[0], delivery(index))
            if response.status == .ok, let id = response.json["alertId"]?.stringValue { acknowledged.append(id) }
        }
        #expect(acknowledged.count == 20)
        try await PrivatePostgres.run("kill", primary.folder)
        try await PrivatePostgres.run("promote", replicaFolder)
        var index = 20
        #expect(
            try await StandbyCluster.eventually(timeout: .seconds(30)) {
                index += 1
                let response = try await FreshConnection.postWebhook(port: cluster.ports[0], delivery(index))
                if response.status == .ok, let id = response.json["alertId"]?.stringValue { acknowledged.append(id) }
                return response.status == .ok
            })
        for id in acknowledged {
            #expect(try await cluster.get(0, "/v1/alerts/\(id)").status == .ok, "alert \(id) was acknowledged")
        }
        let view = try await cluster.get(0, "/v1/cluster").json
        #expect(view["database"]?["host"] == .string("127.0.0.1:\(replicaPort)"))
    }
}
