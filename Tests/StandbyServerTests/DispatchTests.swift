import AsyncHTTPClient
import Crypto
import Foundation
import GRDB
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import StandbyApp
import StandbyCore
import StandbyPrimitives
import StandbyServer
import StandbyStore
import StandbyTestSupport
import Synchronization
import Testing

/// A command receiver on loopback that fails the first `failures` requests and dedupes by key.
final class Receiver: Sendable {
    struct Received: Sendable {
        var body: [UInt8]
        var signature: String
        var idempotencyKey: String
        /// `Standby-Epoch`: the leader's fencing epoch when it pushed.
        var epoch: Int?
    }

    let failures: Int
    private let state = Mutex((count: 0, received: [Received](), keys: Set<String>()))

    init(failures: Int) {
        self.failures = failures
    }

    var received: [Received] { state.withLock { $0.received } }
    var accepted: [Received] {
        state.withLock { state in
            var seen = Set<String>()
            return state.received.filter {
                seen.insert($0.idempotencyKey).inserted && state.keys.contains($0.idempotencyKey)
            }
        }
    }
    var uniqueAccepted: Set<String> { state.withLock { $0.keys } }

    func application() -> some ApplicationProtocol {
        let router = Router()
        router.post("commands") { request, _ -> Response in
            let body = try await request.body.collect(upTo: 1 << 20)
            let received = Received(
                body: Array(body.readableBytesView),
                signature: request.headers[HTTPField.Name("Standby-Signature")!] ?? "",
                idempotencyKey: request.headers[HTTPField.Name("Idempotency-Key")!] ?? "",
                epoch: request.headers[HTTPField.Name("Standby-Epoch")!].flatMap { Int($0) })
            let fail = self.state.withLock { state -> Bool in
                state.count += 1
                state.received.append(received)
                if state.count <= self.failures { return true }
                state.keys.insert(received.idempotencyKey)
                return false
            }
            return Response(status: fail ? .serviceUnavailable : .ok)
        }
        var logger = Logger(label: "receiver")
        logger.logLevel = .warning
        return Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)), logger: logger)
    }
}

@Suite("Push delivery of commands")
struct DispatchTests {
    static let secret = "push-secret-of-at-least-32-bytes!"

    func makeStandby(port: Int, dryRun: Bool = false) -> TestStandby {
        var standby = TestStandby()
        standby.deploymentsYAML = standby.deploymentsYAML
            .replacingOccurrences(
                of: "    pattern: active-passive\n",
                with:
                    "    pattern: active-passive\n    commandWebhook: { url: \"http://127.0.0.1:\(port)/commands\", secret: \"\(Self.secret)\", allowPlainHTTP: true }\n"
            )
            .replacingOccurrences(
                of: "    policy:\n", with: dryRun ? "    policy:\n      dryRun: true\n" : "    policy:\n")
        standby.extraYAML = ""
        return standby
    }

    func makeDispatcher(_ standby: TestStandby, _ components: StandbyComponents, maxAttempts: Int = 8) throws
        -> CommandDispatcher
    {
        var settings = DispatchSettings()
        settings.maxAttempts = maxAttempts
        settings.timeout = 5
        return CommandDispatcher(
            controlPlane: components.controlPlane, leadership: components.leadership,
            topology: try standby.configuration().topology, settings: settings,
            timeSource: standby.time, metrics: components.metrics, logger: Logger(label: "test"), random: { 0.5 })
    }

    @Test("retries with backoff, signs every body, keys by command id, keeps the order within an event")
    func retriesAndSignature() async throws {
        let receiver = Receiver(failures: 2)
        try await receiver.application().test(.live) { receiverClient in
            let port = try #require(receiverClient.port)
            let standby = makeStandby(port: port)
            try await standby.run { client, components in
                for offset: TimeInterval in [0, 10, 20] {
                    try await standby.report(client, "eastus-hub", "failure", at: offset)
                }
                let dispatcher = try makeDispatcher(standby, components)
                let http = CommandDispatcher.makeClient()
                defer { _ = http.shutdown() }
                // Attempt 1 and 2 fail (503); each failure schedules the next attempt 1s, then 2s later.
                #expect(try await dispatcher.dispatchOnce(client: http) == false)
                #expect(try await dispatcher.dispatchOnce(client: http) == false)  // not due yet
                #expect(receiver.received.count == 1)
                standby.time.advance(by: 1)
                #expect(try await dispatcher.dispatchOnce(client: http) == false)
                standby.time.advance(by: 2)
                #expect(try await dispatcher.dispatchOnce(client: http) == true)  // scale_compute delivered
                #expect(try await dispatcher.dispatchOnce(client: http) == true)  // then route_traffic
                #expect(try await dispatcher.dispatchOnce(client: http) == false)
                let commands = try await client.commands()
                #expect(commands.map { $0["status"]?.stringValue } == ["delivered", "delivered"])
                #expect(commands.first?["deliveryAttempts"] == .number(3))
                let accepted = receiver.received.suffix(2)
                #expect(accepted.map(\.idempotencyKey) == commands.compactMap { $0["id"]?.stringValue })
                let kinds = accepted.compactMap { try? JSONValue.decode(Data($0.body))["kind"]?.stringValue }
                #expect(kinds == ["scale_compute", "route_traffic"])
                for delivery in receiver.received {
                    let parts = delivery.signature.split(separator: ",")
                    let timestamp = try #require(parts.first.flatMap { Int($0.dropFirst(2)) })
                    #expect(
                        CommandDispatcher.signature(secret: Self.secret, timestamp: timestamp, body: delivery.body)
                            == delivery.signature)
                    var message = Array("\(timestamp).".utf8)
                    message += delivery.body
                    let mac = HMAC<SHA256>.authenticationCode(
                        for: message, using: SymmetricKey(data: Data(Self.secret.utf8)))
                    #expect(parts.last == Substring("v1=" + mac.map { String(format: "%02x", $0) }.joined()))
                }
                // The pull API still records the application layer's outcome.
                let id = try #require(commands.first?["id"]?.stringValue)
                #expect(
                    try await client.send(.post, "/v1/commands/\(id)/ack", json: #"{"outcome":"succeeded"}"#).status
                        == .ok)
            }
        }
    }

    @Test("dry-run commands are never sent")
    func noDryRunDelivery() async throws {
        let receiver = Receiver(failures: 0)
        try await receiver.application().test(.live) { receiverClient in
            let standby = makeStandby(port: try #require(receiverClient.port), dryRun: true)
            try await standby.run { client, components in
                for offset: TimeInterval in [0, 10, 20] {
                    try await standby.report(client, "eastus-hub", "failure", at: offset)
                }
                #expect(try await client.commands().count == 2)
                let http = CommandDispatcher.makeClient()
                defer { _ = http.shutdown() }
                #expect(try await makeDispatcher(standby, components).dispatchOnce(client: http) == false)
                #expect(receiver.received.isEmpty)
            }
        }
    }

    @Test("after the last attempt the command fails visibly, and so does its failover event")
    func givesUp() async throws {
        let receiver = Receiver(failures: 100)
        try await receiver.application().test(.live) { receiverClient in
            let standby = makeStandby(port: try #require(receiverClient.port))
            try await standby.run { client, components in
                for offset: TimeInterval in [0, 10, 20] {
                    try await standby.report(client, "eastus-hub", "failure", at: offset)
                }
                let dispatcher = try makeDispatcher(standby, components, maxAttempts: 3)
                let http = CommandDispatcher.makeClient()
                defer { _ = http.shutdown() }
                for _ in 0..<3 {
                    try await dispatcher.dispatchOnce(client: http)
                    standby.time.advance(by: 10)
                }
                let first = try #require(try await client.commands().first)
                #expect(first["status"] == .string("failed"))
                #expect(first["lastError"]?.stringValue?.contains("503") == true)
                #expect(try await client.failoverEvents().first?["status"] == .string("failed"))
                #expect(receiver.received.count == 3)
            }
        }
    }

    @Test("a restart in the middle of retries still delivers exactly once to a receiver that dedupes")
    func restartMidRetry() async throws {
        let receiver = Receiver(failures: 1)
        try await receiver.application().test(.live) { receiverClient in
            let standby = makeStandby(port: try #require(receiverClient.port))
            try await standby.run { client, components in
                for offset: TimeInterval in [0, 10, 20] {
                    try await standby.report(client, "eastus-hub", "failure", at: offset)
                }
                let http = CommandDispatcher.makeClient()
                defer { _ = http.shutdown() }
                try await makeDispatcher(standby, components).dispatchOnce(client: http)
            }
            standby.time.advance(by: 5)
            try await standby.run { client, components in
                let http = CommandDispatcher.makeClient()
                defer { _ = http.shutdown() }
                let dispatcher = try makeDispatcher(standby, components)
                while try await dispatcher.dispatchOnce(client: http) {}
                #expect(try await client.commands().allSatisfy { $0["status"] == .string("delivered") })
            }
            #expect(receiver.uniqueAccepted.count == 2)
            #expect(receiver.received.count == 3)
        }
    }
}
