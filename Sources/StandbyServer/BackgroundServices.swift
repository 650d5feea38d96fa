import Logging
import ServiceLifecycle
import StandbyApp
import StandbyCore

/// The services that run beside the HTTP server, each in a file of its own: the decision ticker
/// (time-based rules and acknowledgement deadlines), the lease reaper (expired resubmission
/// leases), the command dispatcher (push delivery), the notifier, the readiness poller (Azure Resource
/// Manager) and the audit checkpoints. Assembled here, once.
/// The singleton services (ticker, reaper, dispatcher) run their passes only while this instance
/// holds the leader lease, through the fenced control plane; the heartbeat (shared store only)
/// keeps that lease.
public func backgroundServices(components: StandbyComponents, logger: Logger) -> [any Service] {
    let configuration = components.configuration
    var services: [any Service] = [
        DecisionTicker(
            controlPlane: components.leaderControlPlane, leadership: components.leadership,
            timeSource: components.timeSource, logger: logger.forService("decision-ticker")),
        LeaseReaper(jobs: components.leaderJobs, leadership: components.leadership, timeSource: components.timeSource),
        CommandDispatcher(
            controlPlane: components.leaderControlPlane, leadership: components.leadership,
            topology: configuration.topology, settings: configuration.dispatch, timeSource: components.timeSource,
            metrics: components.metrics, logger: logger.forService("dispatcher")),
        NotificationDispatcher(
            controlPlane: components.leaderControlPlane, leadership: components.leadership,
            settings: configuration.notifications, dispatch: configuration.dispatch,
            instance: components.instance.id, timeSource: components.timeSource, metrics: components.metrics,
            logger: logger.forService("notifier")),
        ReadinessPoller(
            controlPlane: components.leaderControlPlane, leadership: components.leadership,
            topology: configuration.topology, settings: configuration.readiness, timeSource: components.timeSource,
            ids: components.ids, metrics: components.metrics, logger: logger.forService("readiness")),
        AuditCheckpointService(
            history: components.history, key: configuration.audit.anchorKey,
            interval: configuration.audit.checkpointInterval, timeSource: components.timeSource,
            metrics: components.metrics, logger: logger.forService("audit")),
    ]
    if components.postgres != nil {
        services.append(
            ClusterHeartbeat(
                store: components.store, instance: components.instance, leadership: components.leadership,
                leaseTTL: configuration.cluster.leaseTTL, timeSource: components.timeSource,
                logger: logger.forService("cluster")))
    }
    return services
}

extension Logger {
    /// This logger, with every line of a background service naming it.
    func forService(_ name: String) -> Logger {
        var logger = self
        logger[metadataKey: "service"] = .string(name)
        return logger
    }
}
