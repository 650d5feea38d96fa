import AsyncHTTPClient
import ConfigReading
import Crypto
import CryptoExtras
import Foundation
import GRDB
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import JWTKit
import Logging
import NIOCore
import StandbyApp
import StandbyCore
import StandbyPrimitives
import StandbyTestSupport
import Synchronization
import Testing

@testable import StandbyServer
@testable import StandbyStore

/// A JWKS endpoint on loopback whose keys, failures and speed the test changes, counting fetches.
final class JWKSServer: Sendable {
    enum Mode: Sendable {
        case serve(String)
        case fail
        case slow(String, seconds: Double)
    }

    private let state = Mutex((mode: Mode.fail, fetches: 0))

    var fetches: Int { state.withLock { $0.fetches } }
    func set(_ mode: Mode) { state.withLock { $0.mode = mode } }

    func application() -> some ApplicationProtocol {
        let router = Router()
        router.get("keys") { _, _ -> Response in
            let mode = self.state.withLock { state -> Mode in
                state.fetches += 1
                return state.mode
            }
            switch mode {
            case .fail:
                return Response(status: .internalServerError)
            case .serve(let jwks):
                return Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: jwks)))
            case .slow(let jwks, let seconds):
                try await Task.sleep(for: .seconds(seconds))
                return Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: jwks)))
            }
        }
        var logger = Logger(label: "jwks")
        logger.logLevel = .warning
        return Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)), logger: logger)
    }
}

/// Two signing keys as Entra ID rotates them: `key-1` now, `key-2` published next.
struct RotatingKeys {
    let signers: [String: JWTKeyCollection]
    let publicJWK: [String: String]

    init() async throws {
        var signers: [String: JWTKeyCollection] = [:]
        var publicJWK: [String: String] = [:]
        func base64url(_ data: Data) -> String {
            data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
                .replacingOccurrences(of: "=", with: "")
        }
        for kid in ["key-1", "key-2"] {
            let key = try Insecure.RSA.PrivateKey(backing: _RSA.Signing.PrivateKey(keySize: .bits2048))
            let collection = JWTKeyCollection()
            await collection.add(rsa: key, digestAlgorithm: .sha256, kid: JWKIdentifier(string: kid))
            signers[kid] = collection
            let (modulus, exponent) = try key.publicKey.getKeyPrimitives()
            publicJWK[kid] =
                #"{"kty":"RSA","use":"sig","kid":"\#(kid)","n":"\#(base64url(modulus))","e":"\#(base64url(exponent))"}"#
        }
        self.signers = signers
        self.publicJWK = publicJWK
    }

    func jwks(_ kids: [String]) -> String {
        #"{"keys":[\#(kids.compactMap { publicJWK[$0] }.joined(separator: ","))]}"#
    }

    /// A token signed by `signer`'s key but naming `kid` (a bogus kid, to probe the fallback).
    func token(signedBy signer: String, kid: String? = nil) async throws -> String {
        let claims = TestClaims(
            exp: .init(value: Date().addingTimeInterval(600)),
            iss: .init(value: "https://sts.windows.net/\(TokenFactory.tenant)/"), aud: .init(value: ["api://standby"]),
            roles: ["ActionGroupsSecureWebhook"], tid: TokenFactory.tenant)
        return try await signers[signer]!.sign(claims, kid: JWKIdentifier(string: kid ?? signer))
    }
}

/// The trust side of the hostile review: push, keys, history, secrets, fairness, configuration.
@Suite("Hardening: trust")
struct HardeningTrustTests {
    // MARK: 4 — push never follows redirects

    @Test("4: a redirecting receiver is a failed attempt; the signed body never reaches the other origin")
    func redirectsAreFailures() async throws {
        let elsewhere = Receiver(failures: 0)
        try await elsewhere.application().test(.live) { elsewhereClient in
            let elsewherePort = try #require(elsewhereClient.port)
            let router = Router()
            router.post("commands") { _, _ -> Response in
                Response(status: .temporaryRedirect, headers: [.location: "http://127.0.0.1:\(elsewherePort)/commands"])
            }
            router.post("found") { _, _ -> Response in
                Response(status: .found, headers: [.location: "http://127.0.0.1:\(elsewherePort)/commands"])
            }
            var logger = Logger(label: "redirector")
            logger.logLevel = .warning
            let redirector = Application(
                router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)), logger: logger)
            try await redirector.test(.live) { redirectorClient in
                let port = try #require(redirectorClient.port)
                for path in ["commands", "found"] {
                    var standby = TestStandby()
                    standby.deploymentsYAML = standby.deploymentsYAML.replacingOccurrences(
                        of: "    pattern: active-passive\n",
                        with:
                            "    pattern: active-passive\n    commandWebhook: { url: \"http://127.0.0.1:\(port)/\(path)\", "
                            + "secret: \"\(DispatchTests.secret)\", allowPlainHTTP: true }\n")
                    let configured = standby
                    try await configured.live { client, components in
                        for offset: TimeInterval in [0, 10, 20] {
                            try await configured.report(client, "eastus-hub", "failure", at: offset)
                        }
                        let dispatcher = CommandDispatcher(
                            controlPlane: components.controlPlane, leadership: components.leadership,
                            topology: try configured.configuration().topology,
                            settings: DispatchSettings(), timeSource: configured.time, metrics: components.metrics,
                            logger: Logger(label: "test"), random: { 0.5 })
                        let http = CommandDispatcher.makeClient()
                        defer { _ = http.shutdown() }
                        #expect(try await dispatcher.dispatchOnce(client: http) == false)
                        let first = try #require(try await client.commands().first)
                        #expect(first["status"] == .string("pending"), "\(path)")
                        #expect(first["deliveryAttempts"] == .number(1))
                        #expect(first["lastError"]?.stringValue?.contains("redirects are not followed") == true)
                    }
                }
            }
            #expect(elsewhere.received.isEmpty)
        }
    }

    @Test("4, 11: push URLs must be https unless the receiver opts out; JWKS only over https")
    func httpsRequired() throws {
        let base = TestStandby()
        func problems(_ yaml: String) -> [String] {
            do {
                _ = try ConfigLoader.parse(yaml, environment: ["WEBHOOK_TOKEN": TestStandby.webhookToken])
                return []
            } catch let error as ConfigError {
                return error.problems.map(\.description)
            } catch {
                return ["\(error)"]
            }
        }
        let secret = DispatchTests.secret
        let plain = base.yaml.replacingOccurrences(
            of: "    pattern: active-passive\n",
            with:
                "    pattern: active-passive\n    commandWebhook: { url: \"http://receiver.example/commands\", secret: \"\(secret)\" }\n"
        )
        #expect(problems(plain).contains { $0.hasPrefix("deployments[0].commandWebhook.url: plain http is refused") })
        let optedOut = plain.replacingOccurrences(
            of: "secret: \"\(secret)\" }", with: "secret: \"\(secret)\", allowPlainHTTP: true }")
        #expect(problems(optedOut).isEmpty)
        // Loopback traffic never leaves the machine: plain http to it needs no opt-out.
        let loopback = plain.replacingOccurrences(of: "http://receiver.example", with: "http://127.0.0.1:9000")
        #expect(problems(loopback).isEmpty)
        let ftp = plain.replacingOccurrences(of: "http://receiver", with: "ftp://receiver")
        #expect(problems(ftp).contains { $0.hasPrefix("deployments[0].commandWebhook.url") })
        let jwks = base.yaml.replacingOccurrences(
            of: "  webhookTokens: [\"${WEBHOOK_TOKEN}\", \"rotated-second-token\"]\n",
            with:
                "  webhookTokens: [\"${WEBHOOK_TOKEN}\"]\n  secureWebhook: { tenantId: not-a-guid, audience: x, jwks: \"http://keys.example/keys\" }\n"
        )
        let found = problems(jwks)
        #expect(found.contains { $0.hasPrefix("auth.secureWebhook.tenantId") })
        #expect(found.contains { $0.hasPrefix("auth.secureWebhook.jwks") })
    }

    // MARK: 5 — Secure Webhook keys

    func verifier(_ port: Int) -> SecureWebhookVerifier {
        SecureWebhookVerifier(
            settings: SecureWebhookSettings(
                tenantId: TokenFactory.tenant, audiences: ["api://standby"], jwks: "http://127.0.0.1:\(port)/keys"),
            logger: Logger(label: "test"), fetchTimeout: .seconds(10))
    }

    @Test("5: a newly published key works at once, a bogus kid is refused, refreshes are single and rate-limited")
    func keyRotation() async throws {
        let keys = try await RotatingKeys()
        let server = JWKSServer()
        try await server.application().test(.live) { serverClient in
            let port = try #require(serverClient.port)
            let verifier = verifier(port)
            let now = Date()
            // The JWKS is never fetched for a token that does not parse.
            await #expect(throws: SecureWebhookVerifier.Rejection.self) {
                try await verifier.verify(bearer: "not.a.jwt", now: now)
            }
            #expect(server.fetches == 0)
            server.set(.serve(keys.jwks(["key-1"])))
            _ = try await verifier.verify(bearer: try await keys.token(signedBy: "key-1"), now: now)
            #expect(server.fetches == 1)
            // Rotation: key-2 is published and used at once.
            server.set(.serve(keys.jwks(["key-1", "key-2"])))
            _ = try await verifier.verify(
                bearer: try await keys.token(signedBy: "key-2"), now: now.addingTimeInterval(1))
            #expect(server.fetches == 2)
            // A kid the tenant does not publish, signed by a key it does: refused, not verified by a default key.
            let bogus = try await keys.token(signedBy: "key-1", kid: "key-9")
            for second in 0..<20 {
                await #expect(throws: SecureWebhookVerifier.Rejection.self) {
                    try await verifier.verify(bearer: bogus, now: now.addingTimeInterval(2 + Double(second) / 10))
                }
            }
            #expect(server.fetches == 2)
            // A token signed by one published key but naming the other is refused.
            let crossed = try await keys.token(signedBy: "key-1", kid: "key-2")
            await #expect(throws: SecureWebhookVerifier.Rejection.self) {
                try await verifier.verify(bearer: crossed, now: now.addingTimeInterval(3))
            }
        }
    }

    @Test("5: a failing JWKS is fetched once and backed off; a slow one never holds deliveries with cached keys")
    func failingAndSlowJWKS() async throws {
        let keys = try await RotatingKeys()
        let server = JWKSServer()
        try await server.application().test(.live) { serverClient in
            let port = try #require(serverClient.port)
            let failing = verifier(port)
            let token = try await keys.token(signedBy: "key-1")
            let now = Date()
            for second in 0..<20 {
                await #expect(throws: SecureWebhookVerifier.Rejection.self) {
                    try await failing.verify(bearer: token, now: now.addingTimeInterval(Double(second) / 10))
                }
            }
            #expect(server.fetches == 1)

            let slow = verifier(port)
            server.set(.serve(keys.jwks(["key-1"])))
            _ = try await slow.verify(bearer: token, now: now)
            server.set(.slow(keys.jwks(["key-1"]), seconds: 3))
            // Past jwksRefresh: a refresh starts, and the cached key keeps answering meanwhile.
            let started = ContinuousClock.now
            for _ in 0..<5 { _ = try await slow.verify(bearer: token, now: now.addingTimeInterval(3700)) }
            #expect(ContinuousClock.now - started < .seconds(1))
            // One background refresh for the five (bounded wait for it to reach the server).
            for _ in 0..<50 where server.fetches < 3 { try await Task.sleep(for: .milliseconds(100)) }
            #expect(server.fetches == 3)
        }
    }

    // MARK: 6 — the history proves itself

    static let chainKey = Secret("chain-key-0123456789abcdef0123456789abcdef")

    func keyedStandby() -> TestStandby {
        var standby = TestStandby()
        standby.extraYAML = "audit: { chainKey: \"\(Self.chainKey.value)\" }"
        return standby
    }

    func fill(_ standby: TestStandby) async throws {
        try await standby.run { client, _ in
            _ = try await client.postWebhook(try Fixtures.data("test-action-metric-static.json"))
            for offset: TimeInterval in [0, 10, 20] {
                try await standby.report(client, "eastus-hub", "failure", at: offset)
            }
            _ = try await client.send(.post, "/v1/deployments/foundry-prod/pause", json: #"{"reason":"maintenance"}"#)
        }
    }

    /// What someone with write access to the file and without the key can do: change an event and
    /// recompute every hash after it with plain SHA-256.
    func rewrite(_ path: String, seq: Int64) throws {
        let queue = try DatabaseQueue(path: path)
        try queue.write { db in
            try db.execute(sql: "UPDATE events SET actor = 'mallory' WHERE seq = ?", arguments: [seq])
            var previous =
                try String.fetchOne(db, sql: "SELECT hash FROM events WHERE seq = ?", arguments: [seq - 1])
                ?? EventLog.genesisHash
            for row in try Row.fetchAll(db, sql: "SELECT * FROM events WHERE seq >= ? ORDER BY seq", arguments: [seq]) {
                let event = EventsTable.record(row)
                let body = EventLog.canonicalBody(
                    seq: event.seq, at: event.at, type: event.type, deploymentId: event.deploymentId, hub: event.hub,
                    actor: event.actor, data: event.data)
                let hash = EventLog.chainHash(prevHash: previous, body: body)
                try db.execute(
                    sql: "UPDATE events SET prev_hash = ?, hash = ? WHERE seq = ?",
                    arguments: [previous, hash, event.seq])
                previous = hash
            }
        }
    }

    @Test("6: with audit.chainKey a rewritten event and a fully rewritten history are both found")
    func rewrittenHistory() async throws {
        let standby = keyedStandby()
        try await fill(standby)
        let components = try await standby.components()
        #expect(try await components.history.verify(chainKey: Self.chainKey) > 5)
        try components.database!.pool.close()
        try rewrite(standby.databasePath, seq: 4)
        let reopened = try await standby.components()
        await #expect(throws: AuditVerifier.Failure.self) { try await reopened.history.verify(chainKey: Self.chainKey) }
        try reopened.database!.pool.close()
        // Rewritten from the first event on, as if the key had never been set: refused too.
        try rewrite(standby.databasePath, seq: 1)
        let verifier = AuditVerifier(chainKey: Self.chainKey)
        let history = EventHistory(database: try StandbyDatabase(settings: .init(path: standby.databasePath)))
        await #expect(throws: AuditVerifier.Failure.self) { _ = try await history.verify(verifier) }
    }

    @Test("6: a checkpoint taken outside the database finds events removed from the end")
    func truncatedHistory() async throws {
        let standby = keyedStandby()
        try await fill(standby)
        let components = try await standby.components()
        let checkpoint = try await components.history.checkpoint(key: Self.chainKey, now: Date())
        #expect(checkpoint.signature != nil)
        #expect(AuditCheckpoint(jsonLine: checkpoint.jsonLine) == checkpoint)
        let intact = try await components.history.verify(AuditVerifier(chainKey: Self.chainKey, checkpoint: checkpoint))
        #expect(intact.verified > 5)
        try await components.database!.pool.write { db in
            try db.execute(sql: "DELETE FROM events WHERE seq > ?", arguments: [checkpoint.seq - 3])
        }
        // Without the checkpoint the shorter chain is consistent; with it, the cut is found.
        #expect(try await components.history.verify(chainKey: Self.chainKey) > 0)
        await #expect(throws: AuditVerifier.Failure.self) {
            _ = try await components.history.verify(AuditVerifier(chainKey: Self.chainKey, checkpoint: checkpoint))
        }
        var forged = checkpoint
        forged.seq -= 3
        await #expect(throws: AuditVerifier.Failure.self) {
            _ = try await components.history.verify(AuditVerifier(chainKey: Self.chainKey, checkpoint: forged))
        }
    }

    @Test("6: an unsigned anchor is refused whenever a key is configured")
    func forgedAnchor() async throws {
        let standby = keyedStandby()
        try await fill(standby)
        let components = try await standby.components()
        let events = try await components.history.batch(EventQuery(), afterSeq: 0, batchSize: 1000)
        let kept = events.dropFirst(3)
        let fake = EventAnchor(
            seq: kept.first!.seq - 1, hash: kept.first!.prevHash, at: kept.first!.at, prunedBefore: kept.first!.at,
            prunedCount: 3, signature: nil)
        var verifier = AuditVerifier(chainKey: Self.chainKey)
        #expect(throws: AuditVerifier.Failure.self) { try verifier.start(from: fake) }
        var signed = fake
        signed.signature = EventAnchor.sign(
            seq: fake.seq, hash: fake.hash, prunedBefore: fake.prunedBefore, key: Self.chainKey)
        try verifier.start(from: signed)
        for event in kept { try verifier.check(event) }
        try verifier.finish()
        #expect(verifier.verified == kept.count)
    }

    @Test("6: an unkeyed history upgrades at a marked boundary; a keyed one refuses to run without its key")
    func upgradeAndDowngrade() async throws {
        var unkeyed = TestStandby()
        let folder = unkeyed.folder.path("shared")
        unkeyed.databaseFolder = folder
        try await fill(unkeyed)
        var keyed = keyedStandby()
        keyed.databaseFolder = folder
        let components = try await keyed.components()
        let verified = try await components.history.verify(AuditVerifier(chainKey: Self.chainKey))
        #expect(verified.unkeyed > 0)
        #expect(verified.keyed == 1)
        let boundary = try await components.history.list(
            {
                var query = EventQuery(); query.types = [EventLog.keyedBoundaryType]; return query
            }())
        #expect(boundary.items.count == 1)
        try components.database!.pool.close()
        try await fill(keyed)
        // The key cannot be dropped silently: unkeyed events after keyed ones would look like a rewrite.
        await #expect(throws: StoreError.self) { _ = try await unkeyed.components() }
        // Without the key, the keyed part cannot be checked, and verification says so.
        let history = EventHistory(database: try StandbyDatabase(settings: .init(path: unkeyed.databasePath)))
        do {
            _ = try await history.verify(AuditVerifier())
            Issue.record("a keyed history verified without its key")
        } catch let failure as AuditVerifier.Failure {
            #expect(failure.needsKey)
        }
    }

    @Test("6: standby audit checkpoint and audit verify --checkpoint, as a process")
    func checkpointCommands() async throws {
        let standby = keyedStandby()
        try await fill(standby)
        let config = standby.folder.path("standby.yaml")
        try standby.yaml.write(toFile: config, atomically: true, encoding: .utf8)
        let environment = ["WEBHOOK_TOKEN": TestStandby.webhookToken]
        let (checkpointed, checkpointOutput) = await Self.run(["audit", "checkpoint", "--config", config], environment)
        #expect(checkpointed == 0, "\(checkpointOutput)")
        let checkpointFile = standby.folder.path("checkpoint.json")
        try checkpointOutput.write(toFile: checkpointFile, atomically: true, encoding: .utf8)
        let (verified, verifyOutput) = await Self.run(
            ["audit", "verify", "--config", config, "--checkpoint", checkpointFile], environment)
        #expect(verified == 0, "\(verifyOutput)")
        #expect(verifyOutput.contains("ok:") && verifyOutput.contains("checkpoint matches"))
        let queue = try DatabaseQueue(path: standby.databasePath)
        try await queue.write { db in
            try db.execute(sql: "DELETE FROM events WHERE seq > (SELECT max(seq) - 10 FROM events)")
        }
        try queue.close()
        let (refused, refusedOutput) = await Self.run(
            ["audit", "verify", "--config", config, "--checkpoint", checkpointFile], environment)
        #expect(refused != 0)
        #expect(refusedOutput.contains("tampered") && refusedOutput.contains("removed"), "\(refusedOutput)")
    }

    /// Runs the real `standby` binary; its exit status and everything it printed.
    static func run(_ arguments: [String], _ environment: [String: String]) async -> (Int32, String) {
        await blocking {
            let process = Process()
            process.executableURL = StandbyProcess.binary
            process.arguments = arguments
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
            let output = Pipe()
            process.standardOutput = output
            process.standardError = output
            do { try process.run() } catch { return (-1, "\(error)") }
            let data = output.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return (process.terminationStatus, String(decoding: data, as: UTF8.self))
        }
    }

    // MARK: 7 — secrets never reach a log

    @Test("7: at trace level, no configured secret appears in the server's log")
    func secretsStayOutOfLogs() async throws {
        var standby = TestStandby()
        let pushSecret = "push-secret-never-logged-0123456789"
        let signingKey = "signing-key-never-logged-0123456789"
        let metricsToken = "metrics-token-never-logged"
        standby.deploymentsYAML = standby.deploymentsYAML.replacingOccurrences(
            of: "    pattern: active-passive\n",
            with: "    pattern: active-passive\n    commandWebhook: { url: \"http://127.0.0.1:9/commands\", "
                + "secret: \"\(pushSecret)\", allowPlainHTTP: true }\n")
        standby.serverYAML = ", metricsToken: \(metricsToken)"
        standby.extraYAML = """
            audit: { chainKey: "\(Self.chainKey.value)", signingKey: "\(signingKey)" }
            logging: { level: trace }
            """
        let (server, port) = try await StandbyProcess.start(standby, log: "trace.log")
        let logPath = server.logPath
        _ = try await FreshConnection.postWebhook(port: port, try Fixtures.data("test-action-metric-static.json"))
        _ = try await FreshConnection.execute(
            port: port, .get, "/v1/deployments", headers: [.authorization: "Bearer \(TestStandby.readerToken)"])
        _ = try await FreshConnection.execute(
            port: port, .get, "/metrics", headers: [.authorization: "Bearer \(metricsToken)"])
        kill(server.process.processIdentifier, SIGTERM)
        let process = server.process
        await blocking { process.waitUntilExit() }
        let log = try String(contentsOfFile: logPath, encoding: .utf8)
        #expect(log.contains("level=trace") || log.contains("level=debug"))
        #expect(log.contains("Starting service"))
        for secret in [
            TestStandby.webhookToken, "rotated-second-token", TestStandby.readerToken, TestStandby.operatorToken,
            TestStandby.reporterToken, pushSecret, signingKey, Self.chainKey.value, metricsToken,
            Data(TestStandby.adminToken.utf8).sha256Hex,
        ] {
            #expect(!log.contains(secret), "the log holds \(secret.prefix(8))…")
        }
        #expect(log.contains("audit checkpoint"))
    }

    // MARK: 8 — one big write never stalls the rest

    @Test("8: bulk writes wait behind interactive ones, and share a transaction only up to their weight")
    func bulkLane() async throws {
        let folder = TemporaryFolder()
        let database = try StandbyDatabase(settings: .init(path: folder.path("lanes.sqlite")))
        let writer = database.groupCommit
        let gate = DispatchSemaphore(value: 0)
        let log = CommitLog()
        // Hold the writer, so that everything below queues up behind it.
        let holding = Mutex(false)
        async let blocker: Void = writer.write { (_: WriteBatch) in
            holding.withLock { $0 = true }
            gate.wait()
        }
        try await waitUntil { holding.withLock { $0 } }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<6 {
                group.addTask {
                    try await writer.write(lane: .bulk, weight: 50) { batch in
                        log.append("bulk", batch)
                    }
                }
            }
            try await waitUntil { writer.waiting.bulk == 6 }
            group.addTask {
                try await writer.write { (batch: WriteBatch) in log.append("interactive", batch) }
            }
            // Released only once all seven wait, however slow the machine is.
            try await waitUntil { writer.waiting.interactive == 1 }
            gate.signal()
            try await group.waitForAll()
        }
        try await blocker
        let entries = log.entries
        #expect(entries.first?.lane == "interactive")
        var bulkPerBatch: [ObjectIdentifier: Int] = [:]
        for entry in entries where entry.lane == "bulk" { bulkPerBatch[entry.batch, default: 0] += 1 }
        #expect(bulkPerBatch.values.allSatisfy { $0 * 50 <= 128 })
        #expect(bulkPerBatch.values.reduce(0, +) == 6)
    }

    // MARK: 11 — configuration is bounded

    @Test("11: out-of-range durations and numbers, short secrets: every one named by its key path")
    func boundedConfiguration() {
        let yaml = """
            server: { idleTimeout: 1e300, bodyTimeout: inf, maxConnections: 0 }
            dispatch: { pollInterval: inf, timeout: nan, maxBackoff: 99999999d }
            database: { busyTimeout: 1h }
            audit: { chainKey: short, signingKey: "also-short" }
            auth:
              webhookTokens: ["tiny"]
              apiTokens:
                - { name: a, token: "too-short", roles: [reader] }
            deployments:
              - id: d
                pattern: single-region
                hubs: [{ id: h, region: eastus, role: primary }]
                policy: { window: 0s, cooldown: 30d }
                commandWebhook: { url: "https://receiver.example/c", secret: "" }
            """
        var problems: [String] = []
        do {
            _ = try ConfigLoader.parse(yaml, environment: [:])
        } catch let error as ConfigError {
            problems = error.problems.map(\.path)
        } catch {}
        for path in [
            "server.idleTimeout", "server.bodyTimeout", "server.maxConnections", "dispatch.pollInterval",
            "dispatch.timeout", "dispatch.maxBackoff", "database.busyTimeout", "audit.chainKey", "audit.signingKey",
            "auth.webhookTokens[0]", "auth.apiTokens[0].token", "deployments[0].policy.window",
            "deployments[0].policy.cooldown", "deployments[0].commandWebhook.secret",
        ] {
            #expect(problems.contains(path), "\(path) not reported: \(problems)")
        }
        #expect(ConfigLoader.parseDuration("1e300") == nil)
        #expect(ConfigLoader.parseDuration("inf") == nil)
        #expect(ConfigLoader.parseDuration("1h30m") == 5400)
    }
}

/// Which lane's write ran in which transaction, in commit order. The batches are kept, so that
/// no two of them can share an address (and an identifier).
final class CommitLog: Sendable {
    private let state = Mutex<[(lane: String, batch: WriteBatch)]>([])
    func append(_ lane: String, _ batch: WriteBatch) { state.withLock { $0.append((lane, batch)) } }
    var entries: [(lane: String, batch: ObjectIdentifier)] {
        state.withLock { $0.map { ($0.lane, ObjectIdentifier($0.batch)) } }
    }
}
