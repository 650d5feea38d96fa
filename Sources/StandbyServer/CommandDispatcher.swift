import AsyncHTTPClient
import Crypto
import Foundation
import HTTPTypes
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import StandbyApp
import StandbyCore
import StandbyPrimitives

/// Pushes new commands to each deployment's `commandWebhook`, signed, in order within a failover
/// event, retrying with backoff. The outbox table is the source of truth, so delivery resumes after
/// a restart; receivers dedupe by `Idempotency-Key` (delivery is at least once).
public struct CommandDispatcher: Service, CustomStringConvertible {
    let controlPlane: ControlPlane
    let leadership: Leadership
    let topology: Topology
    let settings: DispatchSettings
    let timeSource: any TimeSource
    let metrics: StandbyMetrics
    let logger: Logger
    let random: @Sendable () -> Double

    public init(
        controlPlane: ControlPlane, leadership: Leadership, topology: Topology, settings: DispatchSettings,
        timeSource: any TimeSource,
        metrics: StandbyMetrics, logger: Logger, random: @escaping @Sendable () -> Double = { Double.random(in: 0...1) }
    ) {
        self.controlPlane = controlPlane
        self.leadership = leadership
        self.topology = topology
        self.settings = settings
        self.timeSource = timeSource
        self.metrics = metrics
        self.logger = logger
        self.random = random
    }

    public func run() async throws {
        guard topology.deployments.contains(where: { $0.commandWebhook != nil }) else {
            // Nothing to push to: stay up until shutdown, since a service that returns early
            // stops the whole service group.
            try? await gracefulShutdown()
            return
        }
        let client = Self.makeClient()
        await repeatWhileLeading(leadership, every: .milliseconds(Int(settings.pollInterval * 1000))) {
            do {
                // Go again at once while there is work; the pause is for an idle outbox.
                while try await dispatchOnce(client: client), !Task.isCancelled {}
            } catch is CancellationError {
            } catch {
                logger.warning("command dispatch pass failed", metadata: ["error": .string("\(error)")])
            }
        }
        try await client.shutdown()
    }

    /// The push client never follows a redirect: a 3xx would re-send the signed body, its
    /// signature and its idempotency key to another origin (307/308), or turn into a bodiless GET
    /// that looks delivered (301/302/303). A redirect is a failed attempt instead.
    public static func makeClient() -> HTTPClient {
        HTTPClient(
            eventLoopGroup: HTTPClient.defaultEventLoopGroup,
            configuration: HTTPClient.Configuration(redirectConfiguration: .disallow))
    }

    /// A description that names the service, not the topology it holds (which holds push secrets).
    public var description: String { "CommandDispatcher" }

    /// One pass over the deliverable commands; true when something was delivered (go again at once).
    @discardableResult
    public func dispatchOnce(client: HTTPClient) async throws -> Bool {
        guard let epoch = leadership.currentEpoch else { return false }
        let now = timeSource.now()
        let commands = try await controlPlane.deliverableCommands(now: now, limit: 64)
        var delivered = false
        try await withThrowingTaskGroup(of: Bool.self) { group in
            for command in commands {
                guard let webhook = topology.deployment(command.deploymentId)?.commandWebhook else { continue }
                group.addTask { try await deliver(command, to: webhook, epoch: epoch, client: client) }
            }
            for try await success in group { delivered = delivered || success }
        }
        return delivered
    }

    /// `t=<unix>,v1=<hex HMAC-SHA256 of "t.body">`, the header receivers verify.
    public static func signature(secret: String, timestamp: Int, body: [UInt8]) -> String {
        var message = Array("\(timestamp).".utf8)
        message += body
        let mac = HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: Data(secret.utf8)))
        return "t=\(timestamp),v1=" + hexString(mac)
    }

    private func deliver(_ command: CommandView, to webhook: CommandWebhook, epoch: Int, client: HTTPClient)
        async throws -> Bool
    {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let body = Array(try encoder.encode(command))
        let now = timeSource.now()
        var request = HTTPClientRequest(url: webhook.url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "User-Agent", value: "standby-dispatcher")
        request.headers.add(name: "Idempotency-Key", value: command.id)
        // The leader's fencing epoch: a receiver can drop pushes from an epoch older than one it saw.
        request.headers.add(name: "Standby-Epoch", value: String(epoch))
        request.headers.add(
            name: "Standby-Signature",
            value: Self.signature(secret: webhook.secret.value, timestamp: Int(now.timeIntervalSince1970), body: body))
        request.body = .bytes(ByteBuffer(bytes: body))
        let started = ContinuousClock.now
        var failure: String?
        do {
            let response = try await client.execute(request, timeout: .milliseconds(Int64(settings.timeout * 1000)))
            _ = try? await response.body.collect(upTo: 64 * 1024)
            switch response.status.code {
            case 200..<300: break
            case 300..<400:
                failure = "HTTP \(response.status.code): redirects are not followed (the receiver must answer itself)"
            default: failure = "HTTP \(response.status.code)"
            }
        } catch {
            failure = "\(error)"
        }
        let outcome = failure == nil ? "delivered" : "failed"
        metrics.count("standby_dispatch_attempts_total", [("outcome", outcome)])
        metrics.time("standby_dispatch_duration_seconds", [("outcome", outcome)], ContinuousClock.now - started)
        guard let failure else {
            try await controlPlane.recordDelivery(commandId: command.id, now: timeSource.now())
            logger.info("command delivered", metadata: ["command": .string(command.id), "kind": .string(command.kind)])
            return true
        }
        let attempts = command.deliveryAttempts + 1
        let next: Date?
        if attempts >= settings.maxAttempts {
            next = nil
            logger.error(
                "command delivery failed for good",
                metadata: [
                    "command": .string(command.id), "attempts": .string("\(attempts)"), "error": .string(failure),
                ])
        } else {
            let delay = Backoff(base: settings.baseBackoff, maximum: settings.maxBackoff)
                .delay(afterAttempt: attempts, random: random())
            next = timeSource.now().addingTimeInterval(delay)
            logger.warning(
                "command delivery failed; will retry",
                metadata: [
                    "command": .string(command.id), "attempts": .string("\(attempts)"), "error": .string(failure),
                ])
        }
        try await controlPlane.recordDeliveryFailure(
            commandId: command.id, error: failure, nextAttemptAt: next, now: timeSource.now())
        return false
    }
}
