import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import StandbyApp
import StandbyPrimitives

/// Delivers the notification outbox to Slack, Teams, PagerDuty and signed webhooks, on the leader
/// only, retrying with backoff (`dispatch.maxAttempts`, `baseBackoff`, `maxBackoff`). Decisions never
/// wait for it: a notification is a row written with its cause, sent afterwards.
public struct NotificationDispatcher: Service, CustomStringConvertible {
    let controlPlane: ControlPlane
    let leadership: Leadership
    let settings: NotificationSettings
    let dispatch: DispatchSettings
    let instance: String
    let timeSource: any TimeSource
    let metrics: StandbyMetrics
    let logger: Logger
    let random: @Sendable () -> Double

    public init(
        controlPlane: ControlPlane, leadership: Leadership, settings: NotificationSettings, dispatch: DispatchSettings,
        instance: String, timeSource: any TimeSource, metrics: StandbyMetrics, logger: Logger,
        random: @escaping @Sendable () -> Double = { Double.random(in: 0...1) }
    ) {
        self.controlPlane = controlPlane
        self.leadership = leadership
        self.settings = settings
        self.dispatch = dispatch
        self.instance = instance
        self.timeSource = timeSource
        self.metrics = metrics
        self.logger = logger
        self.random = random
    }

    public var description: String { "NotificationDispatcher" }

    public func run() async throws {
        guard !settings.receivers.isEmpty else {
            try? await gracefulShutdown()
            return
        }
        let client = CommandDispatcher.makeClient()
        await repeatWhileLeading(leadership, every: .milliseconds(Int(dispatch.pollInterval * 1000))) {
            do {
                while try await dispatchOnce(client: client), !Task.isCancelled {}
            } catch is CancellationError {
            } catch {
                logger.warning("notification pass failed", metadata: ["error": .string("\(error)")])
            }
        }
        try await client.shutdown()
    }

    /// One pass over the due notifications; true when one was delivered (go again at once).
    @discardableResult
    public func dispatchOnce(client: HTTPClient) async throws -> Bool {
        guard let epoch = leadership.currentEpoch else { return false }
        let due = try await controlPlane.deliverableNotifications(now: timeSource.now(), limit: 32)
        var delivered = false
        // One receiver's notifications leave in order (a resolve never overtakes its trigger);
        // receivers are served side by side.
        let byReceiver = Dictionary(grouping: due, by: \.receiver)
        try await withThrowingTaskGroup(of: Bool.self) { group in
            for (name, notifications) in byReceiver {
                group.addTask {
                    var any = false
                    for notification in notifications {
                        guard let receiver = settings.receiver(named: name) else {
                            try await controlPlane.recordNotificationFailure(
                                id: notification.id, error: "no receiver is named \(name) in the config",
                                nextAttemptAt: nil, now: timeSource.now())
                            continue
                        }
                        guard try await deliver(notification, to: receiver, epoch: epoch, client: client) else { break }
                        any = true
                    }
                    return any
                }
            }
            for try await success in group { delivered = delivered || success }
        }
        return delivered
    }

    private func deliver(
        _ notification: NotificationView, to receiver: NotificationReceiver, epoch: Int, client: HTTPClient
    )
        async throws -> Bool
    {
        let body = Array(
            NotificationPayloads.body(for: notification, receiver: receiver, instance: instance).canonicalData())
        var request = HTTPClientRequest(url: receiver.url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "User-Agent", value: "standby-notifier")
        if receiver.kind == .webhook, let secret = receiver.secret {
            request.headers.add(name: "Idempotency-Key", value: notification.id)
            request.headers.add(name: "Standby-Epoch", value: String(epoch))
            request.headers.add(
                name: "Standby-Signature",
                value: CommandDispatcher.signature(
                    secret: secret.value, timestamp: Int(timeSource.now().timeIntervalSince1970), body: body))
        }
        request.body = .bytes(ByteBuffer(bytes: body))
        var failure: String?
        var permanent = false
        var retryAfter: TimeInterval?
        do {
            let response = try await client.execute(request, timeout: .milliseconds(Int64(dispatch.timeout * 1000)))
            _ = try? await response.body.collect(upTo: 64 * 1024)
            let code = Int(response.status.code)
            switch code {
            case 200..<300: break
            case 408, 429, 500...:
                failure = "HTTP \(code)"
                retryAfter = RetryAfter.seconds(response.headers.first(name: "Retry-After"))
            default:
                // The receiver refuses this message as it is (a bad key, a malformed body):
                // sending it again cannot help.
                failure = "HTTP \(code)"
                permanent = true
            }
        } catch {
            failure = "\(error)"
        }
        metrics.count(
            "standby_notification_attempts_total",
            [("receiver", receiver.name), ("outcome", failure == nil ? "delivered" : "failed")])
        guard let failure else {
            try await controlPlane.recordNotificationDelivered(id: notification.id, now: timeSource.now())
            logger.info(
                "notification delivered",
                metadata: ["receiver": .string(receiver.name), "event": .string(notification.event.rawValue)])
            return true
        }
        let attempts = notification.attempts + 1
        var next: Date?
        if !permanent, attempts < dispatch.maxAttempts {
            let delay = Backoff(base: dispatch.baseBackoff, maximum: dispatch.maxBackoff)
                .delay(afterAttempt: attempts, random: random())
            next = timeSource.now().addingTimeInterval(max(delay, min(retryAfter ?? 0, dispatch.maxBackoff)))
        }
        logger.warning(
            next == nil ? "notification failed for good" : "notification failed; will retry",
            metadata: [
                "receiver": .string(receiver.name), "notification": .string(notification.id),
                "attempts": .string("\(attempts)"), "error": .string(failure),
            ])
        try await controlPlane.recordNotificationFailure(
            id: notification.id, error: failure, nextAttemptAt: next, now: timeSource.now())
        return false
    }
}
