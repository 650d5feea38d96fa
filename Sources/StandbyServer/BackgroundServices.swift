import Logging
import ServiceLifecycle
import StandbyApp
import StandbyCore

/// The services that run beside the HTTP server, each in a file of its own: the decision ticker
/// (time-based rules), the lease reaper (expired resubmission leases), the command dispatcher (push
/// delivery) and the audit checkpoints. Assembled here, once.
public func backgroundServices(components: StandbyComponents, logger: Logger) -> [any Service] {
    let configuration = components.configuration
    return [
        DecisionTicker(
            controlPlane: components.controlPlane, timeSource: components.timeSource,
            logger: logger.forService("decision-ticker")),
        LeaseReaper(jobs: components.jobs, timeSource: components.timeSource),
        CommandDispatcher(
            controlPlane: components.controlPlane, topology: configuration.topology, settings: configuration.dispatch,
            timeSource: components.timeSource, metrics: components.metrics, logger: logger.forService("dispatcher")),
        AuditCheckpointService(
            history: components.history, key: configuration.audit.anchorKey,
            interval: configuration.audit.checkpointInterval, timeSource: components.timeSource,
            metrics: components.metrics, logger: logger.forService("audit")),
    ]
}

extension Logger {
    /// This logger, with every line of a background service naming it.
    func forService(_ name: String) -> Logger {
        var logger = self
        logger[metadataKey: "service"] = .string(name)
        return logger
    }
}
