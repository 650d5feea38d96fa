import Foundation
import Hummingbird
import Logging
import Metrics
import NIOCore
import Prometheus
import ServiceLifecycle
import StandbyCore
import StandbyPrimitives
import Synchronization

/// The probe's own metrics: one Prometheus registry, fed through swift-metrics with an explicit
/// factory (no process-global bootstrap).
public final class ProbeMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()
    let factory: PrometheusMetricsFactory

    public init() {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .milliseconds(5), .milliseconds(25), .milliseconds(100), .milliseconds(250), .seconds(1), .seconds(5),
            .seconds(15), .seconds(60), .seconds(300),
        ]
        self.factory = factory
    }

    func checked(_ result: CheckResult) {
        let outcome = result.success ? "success" : "failure"
        Counter(
            label: "standby_probe_checks_total",
            dimensions: [("hub", result.hub), ("target", result.target), ("outcome", outcome)], factory: factory
        ).increment()
        if !result.success {
            Counter(
                label: "standby_probe_check_failures_total",
                dimensions: [("hub", result.hub), ("target", result.target)],
                factory: factory
            ).increment()
        }
        Metrics.Timer(
            label: "standby_probe_check_duration_seconds",
            dimensions: [("hub", result.hub), ("target", result.target)],
            factory: factory
        ).recordNanoseconds(Int64(result.latencyMs * 1_000_000))
    }

    func deliveryAttempt(url: String, status: Int?) {
        Counter(
            label: "standby_probe_delivery_attempts_total",
            dimensions: [("url", url), ("status", status.map(String.init) ?? "error")], factory: factory
        ).increment()
    }

    /// How long after its check a report reached a Standby.
    func delivered(_ batch: [PendingReport], at now: Date) {
        Counter(label: "standby_probe_reports_delivered_total", factory: factory).increment(by: batch.count)
        let lag = Metrics.Timer(label: "standby_probe_report_delivery_lag_seconds", factory: factory)
        for report in batch {
            lag.recordNanoseconds(Int64(max(0, now.timeIntervalSince(report.result.observedAt)) * 1_000_000_000))
        }
    }

    func dropped(_ count: Int, reason: String) {
        guard count > 0 else { return }
        Counter(label: "standby_probe_reports_dropped_total", dimensions: [("reason", reason)], factory: factory)
            .increment(by: count)
    }

    func bufferDepth(_ depth: Int) {
        Gauge(label: "standby_probe_buffer_depth", factory: factory).record(depth)
    }
}

/// `standby probe`: every target checked on its own interval, each result a health report with the
/// probe's own `observedAt`, reports delivered in batches through the buffer, and `/metrics` and
/// `/healthz` of its own. Stops on graceful shutdown after one last delivery attempt.
public struct ProbeAgent: Service, CustomStringConvertible {
    let configuration: ProbeConfiguration
    let timeSource: any TimeSource
    let logger: Logger
    public let metrics: ProbeMetrics
    public let buffer: ReportBuffer
    let random: @Sendable () -> Double

    public init(
        configuration: ProbeConfiguration, timeSource: any TimeSource = SystemTimeSource(), metrics: ProbeMetrics,
        logger: Logger, random: @escaping @Sendable () -> Double = { Double.random(in: 0...1) }
    ) {
        self.configuration = configuration
        self.timeSource = timeSource
        self.metrics = metrics
        self.logger = logger
        self.random = random
        buffer = ReportBuffer(capacity: configuration.standby.bufferSize)
    }

    public var description: String { "ProbeAgent(source: \(configuration.source))" }

    public func run() async throws {
        let checkers = try configuration.targets.map { try TargetChecker(target: $0, timeSource: timeSource) }
        let sender = ReportSender(
            endpoint: configuration.standby, source: configuration.source, metrics: metrics, timeSource: timeSource,
            logger: logger)
        logger.info(
            "probe started",
            metadata: [
                "source": .string(configuration.source), "targets": .string("\(checkers.count)"),
                "standby": .string(configuration.standby.urls.joined(separator: ",")),
            ])
        await withTaskGroup(of: Void.self) { group in
            for checker in checkers {
                group.addTask {
                    await cancelWhenGracefulShutdown { await runChecks(checker) }
                }
            }
            group.addTask {
                await deliver(sender)
            }
            await group.waitForAll()
        }
        for checker in checkers { await checker.shutdown() }
        await sender.shutdown()
        logger.info("probe stopped", metadata: ["undelivered": .string("\(buffer.count)")])
    }

    /// One target's loop: a check every `interval`, measured from the start of the previous one
    /// (checks of a target never overlap: the timeout is at most the interval).
    func runChecks(_ checker: TargetChecker) async {
        let interval = Duration.milliseconds(Int64(checker.target.interval * 1000))
        // Spread the first checks of many targets over their interval's first tenth.
        try? await Task.sleep(for: interval * (random() * 0.1))
        var next = ContinuousClock.now
        while !Task.isCancelled {
            let result = await checker.run()
            logger.debug(
                "check",
                metadata: [
                    "hub": .string(result.hub), "target": .string(result.target),
                    "outcome": .string(result.success ? "success" : "failure"), "detail": .string(result.detail),
                    "observedAt": .string(Timestamp.format(result.observedAt)),
                    "ms": .string(String(format: "%.1f", result.latencyMs)),
                ])
            metrics.checked(result)
            metrics.dropped(buffer.add(result), reason: "buffer_full")
            metrics.bufferDepth(buffer.count)
            next += interval
            let now = ContinuousClock.now
            if next < now { next = now }
            do { try await Task.sleep(until: next, clock: .continuous) } catch { return }
        }
    }

    /// The sender's loop: a batch whenever reports wait (looked for every `flushInterval`), a
    /// growing pause after a round where no Standby answered. On shutdown, one last attempt for
    /// what is buffered.
    func deliver(_ sender: ReportSender) async {
        let flush = Duration.milliseconds(Int64(configuration.standby.flushInterval * 1000))
        await cancelWhenGracefulShutdown {
            var failures = 0
            while !Task.isCancelled {
                let batch = buffer.oldest(configuration.standby.batchSize)
                if batch.isEmpty {
                    do { try await Task.sleep(for: flush) } catch { return }
                    continue
                }
                switch await sender.send(batch) {
                case .delivered:
                    failures = 0
                    buffer.remove(batch)
                    metrics.delivered(batch, at: timeSource.now())
                case .rejected(let status, let detail):
                    buffer.remove(batch)
                    metrics.dropped(batch.count, reason: "rejected")
                    logger.error(
                        "every Standby refused a batch of reports as invalid; it is dropped",
                        metadata: ["status": .string("\(status)"), "detail": .string(detail)])
                case .unavailable(let retryAfter):
                    failures += 1
                    let pause = ReportSender.backoff(failures: failures, retryAfter: retryAfter, random: random())
                    if failures == 1 || failures % 10 == 0 {
                        logger.warning(
                            "no Standby took the reports; they stay buffered",
                            metadata: [
                                "buffered": .string("\(buffer.count)"),
                                "retryIn": .string(String(format: "%.1fs", pause)),
                            ])
                    }
                    do { try await Task.sleep(for: .milliseconds(Int64(pause * 1000))) } catch { return }
                }
                metrics.bufferDepth(buffer.count)
            }
        }
        let last = buffer.oldest(configuration.standby.batchSize)
        if !last.isEmpty, case .delivered = await sender.send(last) {
            buffer.remove(last)
            metrics.delivered(last, at: timeSource.now())
        }
    }

    /// `/metrics` and `/healthz` of the probe itself.
    public func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.get("healthz") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: .init(
                    byteBuffer: ByteBuffer(
                        string: JSONValue.object([
                            "status": .string("ok"), "source": .string(configuration.source),
                            "buffered": .number(Double(buffer.count)), "dropped": .number(Double(buffer.dropped)),
                        ]).canonicalString())))
        }
        router.get("metrics") { _, _ in
            metrics.bufferDepth(buffer.count)
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: metrics.registry.emitToBuffer())))
        }
        return router
    }
}
