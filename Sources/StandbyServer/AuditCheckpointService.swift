import Foundation
import Logging
import Prometheus
import ServiceLifecycle
import StandbyApp
import StandbyCore
import StandbyPrimitives
import StandbyStore
import Synchronization

/// Writes a signed checkpoint of the history's head to the log at start and every
/// `audit.checkpointInterval`, and shows the latest in `/metrics`: copies that live outside the
/// database, from which `standby audit verify --checkpoint` later proves that no event up to that
/// point was removed or rewritten.
public struct AuditCheckpointService: Service, CustomStringConvertible {
    let history: any HistoryStore
    let key: Secret?
    let interval: Duration
    let timeSource: any TimeSource
    let metrics: StandbyMetrics
    let logger: Logger

    public init(
        history: any HistoryStore, key: Secret?, interval: TimeInterval, timeSource: any TimeSource,
        metrics: StandbyMetrics, logger: Logger
    ) {
        self.history = history
        self.key = key
        self.interval = .milliseconds(Int64(interval * 1000))
        self.timeSource = timeSource
        self.metrics = metrics
        self.logger = logger
    }

    public var description: String { "AuditCheckpointService" }

    public func run() async throws {
        let published = PublishedCheckpoint()
        await repeatUntilShutdown(every: interval) {
            do {
                let checkpoint = try await history.checkpoint(key: key, now: timeSource.now())
                logger.info(
                    "audit checkpoint",
                    metadata: [
                        "seq": .string(String(checkpoint.seq)), "hash": .string(checkpoint.hash),
                        "at": .string(checkpoint.at), "signature": .string(checkpoint.signature ?? "unsigned"),
                        "checkpoint": .string(checkpoint.jsonLine),
                    ])
                publish(checkpoint, replacing: published)
            } catch is CancellationError {
            } catch {
                logger.warning("audit checkpoint failed; retrying", metadata: ["error": .string("\(error)")])
            }
        }
    }

    /// One series, `standby_audit_checkpoint{hash, at, signature}` = seq, replaced at each checkpoint.
    private func publish(_ checkpoint: AuditCheckpoint, replacing published: PublishedCheckpoint) {
        let gauge = metrics.registry.makeGauge(
            descriptor: MetricNameDescriptor(
                metricName: "standby_audit_checkpoint", unitName: "",
                helpText: "The seq of the history's latest signed checkpoint; its hash, time and signature as labels."),
            labels: [
                ("hash", checkpoint.hash), ("at", checkpoint.at), ("signature", checkpoint.signature ?? "unsigned"),
            ])
        gauge.set(Double(checkpoint.seq))
        let previous = published.gauge.withLock { state -> Prometheus.Gauge? in
            defer { state = gauge }
            return state
        }
        if let previous, previous !== gauge { metrics.registry.unregisterGauge(previous) }
    }
}

/// The series of the latest checkpoint, removed when the next one replaces it.
private final class PublishedCheckpoint: Sendable {
    let gauge = Mutex<Prometheus.Gauge?>(nil)
}
