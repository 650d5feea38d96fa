import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Metrics
import NIOCore
import Prometheus
import StandbyApp
import StandbyCore
import StandbyPrimitives
import Synchronization

/// Standby's metrics: one Prometheus registry per running instance, fed through swift-metrics
/// with an explicit factory (no process-global bootstrap, so tests can run many instances).
public final class StandbyMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    public let factory: PrometheusMetricsFactory

    public init() {
        registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
            .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
            .seconds(1), .seconds(2.5), .seconds(5), .seconds(10),
        ]
        self.factory = factory
    }

    public func count(_ name: String, _ dimensions: [(String, String)] = [], by amount: Int = 1) {
        Counter(label: name, dimensions: dimensions, factory: factory).increment(by: amount)
    }

    public func time(_ name: String, _ dimensions: [(String, String)] = [], _ duration: Duration) {
        Metrics.Timer(label: name, dimensions: dimensions, factory: factory).record(duration: duration)
    }

    public func gauge(_ name: String, _ dimensions: [(String, String)] = [], _ value: Double) {
        Gauge(label: name, dimensions: dimensions, factory: factory).record(value)
    }

    /// Refreshes the gauges that mirror the database, then renders the Prometheus text format.
    func render(snapshot: MetricsSnapshot) -> [UInt8] {
        for (deployment, hub, health) in snapshot.hubHealth {
            for state in HubHealth.allCases {
                gauge(
                    "standby_hub_health", [("deployment", deployment), ("hub", hub), ("state", state.rawValue)],
                    state == health ? 1 : 0)
            }
        }
        for (deployment, hub, check, status) in snapshot.readiness {
            for candidate in ReadinessStatus.allCases {
                gauge(
                    "standby_hub_readiness",
                    [("deployment", deployment), ("hub", hub), ("check", check), ("status", candidate.rawValue)],
                    candidate == status ? 1 : 0)
            }
        }
        var windows: [String: Int] = [:]
        for (deployment, hub, _) in snapshot.hubHealth { windows["\(deployment)\u{0}\(hub)"] = 0 }
        for (deployment, hub, count) in snapshot.openWindows { windows["\(deployment)\u{0}\(hub)"] = count }
        for (key, count) in windows {
            let parts = key.split(separator: "\u{0}", omittingEmptySubsequences: false).map(String.init)
            gauge("standby_open_failure_windows", [("deployment", parts[0]), ("hub", parts[1])], Double(count))
        }
        for (deployment, trigger, kind, count) in snapshot.failovers {
            gauge(
                "standby_failover_events", [("deployment", deployment), ("trigger", trigger), ("kind", kind)],
                Double(count))
        }
        for status in CommandStatus.allCases.map(\.rawValue) {
            gauge(
                "standby_commands", [("status", status)],
                Double(snapshot.commands.first { $0.status == status }?.count ?? 0))
        }
        for status in ResubmissionStatus.allCases {
            gauge(
                "standby_resubmission_queue", [("status", status.rawValue)],
                Double(snapshot.resubmissions.first { $0.status == status.rawValue }?.count ?? 0))
        }
        return registry.emitToBuffer()
    }
}

/// Times every request by route (the matched pattern, never the raw path with its IDs or tokens).
struct MetricsMiddleware: RouterMiddleware {
    typealias Context = StandbyRequestContext
    let metrics: StandbyMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        let started = ContinuousClock.now
        var response = try await next(request, context)
        let route = context.endpointPath ?? "unmatched"
        metrics.time(
            "standby_http_request_duration_seconds",
            [("route", route), ("method", request.method.rawValue), ("status", String(response.status.code))],
            ContinuousClock.now - started)
        response.headers[.requestID] = context.requestID
        let level: Logger.Level =
            response.status.code >= 500 ? .warning : (response.status.code >= 400 ? .info : .debug)
        context.logger.log(
            level: level, "request",
            metadata: [
                "method": .string(request.method.rawValue), "route": .string(route),
                "status": .string(String(response.status.code)),
                "ms": .string(
                    String(format: "%.2f", Double((ContinuousClock.now - started) / .microseconds(1)) / 1000)),
            ])
        return response
    }
}

extension HTTPField.Name {
    static let requestID = HTTPField.Name("X-Request-Id")!
}

extension StandbyRequestContext {
    var requestID: String { logger[metadataKey: "hb.request.id"].map { "\($0)" } ?? "" }
}

/// `GET /metrics`: Prometheus text format. Counters and timers are live; the gauges that mirror
/// the database come from a snapshot at most `snapshotFreshness` old, so that scrapes (which need
/// no token unless `server.metricsToken` is set) cost no query each.
struct MetricsController {
    static let snapshotFreshness: Duration = .seconds(2)

    let metrics: StandbyMetrics
    let controlPlane: ControlPlane
    let timeSource: any TimeSource
    let authenticator: Authenticator
    private let cache = SnapshotCache()

    init(metrics: StandbyMetrics, controlPlane: ControlPlane, timeSource: any TimeSource, authenticator: Authenticator)
    {
        self.metrics = metrics
        self.controlPlane = controlPlane
        self.timeSource = timeSource
        self.authenticator = authenticator
    }

    final class SnapshotCache: Sendable {
        private let latest = Mutex<(snapshot: MetricsSnapshot, at: ContinuousClock.Instant)?>(nil)

        func snapshot(refresh: () async throws -> MetricsSnapshot) async throws -> MetricsSnapshot {
            if let cached = latest.withLock({ $0 }),
                ContinuousClock.now - cached.at < MetricsController.snapshotFreshness
            {
                return cached.snapshot
            }
            let fresh = try await refresh()
            latest.withLock { $0 = (fresh, ContinuousClock.now) }
            return fresh
        }
    }

    func register(on router: Router<StandbyRequestContext>) {
        router.get("metrics") { request, _ in
            if authenticator.protectsMetrics {
                guard let header = request.headers[.authorization],
                    let credential = Authenticator.bearerCredential(header),
                    authenticator.isValidMetricsToken(credential)
                else { throw Problem.unauthorized("send server.metricsToken as Authorization: Bearer <token>") }
            }
            let snapshot = try await cache.snapshot { try await controlPlane.metricsSnapshot(now: timeSource.now()) }
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: metrics.render(snapshot: snapshot))))
        }
    }
}
