import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import OpenAPIHummingbird
import ServiceLifecycle
import StandbyApp
import StandbyCore
import StandbyPostgres
import StandbyPrimitives
import StandbyStore

/// Everything a running Standby is made of, assembled once from the configuration.
public struct StandbyComponents: Sendable {
    public let configuration: StandbyConfiguration
    /// The embedded database, when the store is SQLite (`database.path`).
    public let database: StandbyDatabase?
    /// The shared database, when the store is PostgreSQL (`database.url`).
    public let postgres: PostgresStore?
    /// The control plane's storage, whichever the backend.
    public let store: any ControlStore
    public let alerts: any AlertRepository
    public let controlPlane: ControlPlane
    public let jobs: JobQueue
    public let history: any HistoryStore
    public let readiness: Readiness
    public let metrics: StandbyMetrics
    public let timeSource: any TimeSource
    /// The one source of ids (time-ordered, at `timeSource`'s time), for every part.
    public let ids: any IDSource
    /// Who this process is among the instances sharing the store.
    public let instance: InstanceIdentity
    /// Whether this instance leads the singleton work, and under which epoch.
    public let leadership: Leadership
    /// The control plane and the queue as singleton work uses them: every write checks the lease.
    public let leaderControlPlane: ControlPlane
    public let leaderJobs: JobQueue

    /// Opens the database (SQLite or PostgreSQL, as configured) and applies pending migrations.
    public init(
        configuration: StandbyConfiguration, timeSource: any TimeSource = SystemTimeSource(),
        ids: (any IDSource)? = nil
    ) async throws {
        let ids = ids ?? TimeOrderedIDSource(timeSource: timeSource)
        self.configuration = configuration
        self.timeSource = timeSource
        self.ids = ids
        instance = InstanceIdentity(
            id: configuration.cluster.instanceId(port: configuration.server.port), region: configuration.cluster.region,
            url: configuration.cluster.url, startedAt: timeSource.now())
        metrics = StandbyMetrics()
        let store: any ControlStore
        if let settings = configuration.postgres {
            let postgres = try PostgresStore(settings: settings, chainKey: configuration.audit.chainKey)
            do {
                try await postgres.migrate()
            } catch {
                postgres.shutdown()
                throw error
            }
            self.postgres = postgres
            database = nil
            store = postgres
            alerts = postgres
            history = postgres
            leadership = Leadership(instanceId: instance.id)
        } else {
            let database = try StandbyDatabase(
                settings: configuration.database, chainKey: configuration.audit.chainKey,
                metricsFactory: metrics.factory)
            try database.migrate()
            self.database = database
            postgres = nil
            store = SQLiteControlStore(database: database)
            alerts = SQLiteAlertRepository(database: database, ids: ids)
            history = EventHistory(database: database)
            leadership = .permanent(instanceId: instance.id)
        }
        try await history.prepareChain(now: timeSource.now())
        self.store = store
        controlPlane = ControlPlane(
            store: store, topology: configuration.topology, ids: ids,
            resubmissionAttempts: configuration.resubmissions.maxAttempts, incident: configuration.incident)
        jobs = JobQueue(
            store: store, topology: configuration.topology, settings: configuration.resubmissions, ids: ids)
        let fenced = LeaderFencedStore(base: store, leadership: leadership)
        leaderControlPlane = ControlPlane(
            store: fenced, topology: configuration.topology, ids: ids,
            resubmissionAttempts: configuration.resubmissions.maxAttempts, incident: configuration.incident)
        leaderJobs = JobQueue(
            store: fenced, topology: configuration.topology, settings: configuration.resubmissions, ids: ids)
        readiness = Readiness()
    }

    /// Closes the database's connections (PostgreSQL); the embedded file closes with the process.
    public func shutdown() {
        postgres?.shutdown()
    }
}

extension StandbyComponents {
    /// History records which configuration a process started with (by hash: it holds no secrets).
    public func recordConfigLoaded(file: String, fileSHA256: String) async throws {
        let topology = configuration.topology
        try await store.write { [timeSource] transaction in
            try transaction.append(
                EventDraft(
                    type: "config.loaded", at: timeSource.now(), actor: "standby",
                    data: .object([
                        "file": .string(file), "sha256": .string(fileSHA256),
                        "deployments": .strings(topology.deployments.map(\.id)),
                        "hubs": .number(Double(topology.deployments.reduce(0) { $0 + $1.hubs.count })),
                    ])))
        }
    }
}

/// Builds the HTTP application and its background services (STYLE §1: tests call this too).
/// `withTicker: false` leaves time-based re-evaluation to the caller (tests move a manual clock and
/// call `ControlPlane.tick` themselves).
public func buildApplication(
    components: StandbyComponents, logger: Logger, withTicker: Bool = true
) throws -> some ApplicationProtocol {
    let configuration = components.configuration
    if configuration.auth.webhookTokens.isEmpty, configuration.auth.secureWebhook == nil {
        logger.warning("no webhook token is configured: POST /webhooks/azure-monitor answers 401 to every delivery")
    }
    let router = try buildRouter(components: components)
    return Application(
        router: router,
        server: .http1(
            configuration: .init(
                additionalChannelHandlers: [
                    RequestGuardHandler(
                        maxBodyBytes: configuration.server.maxBodyBytes,
                        bodyTimeout: .milliseconds(Int64(configuration.server.bodyTimeout * 1000)))
                ],
                idleTimeout: .milliseconds(Int64(configuration.server.idleTimeout * 1000)))),
        configuration: .init(
            address: .hostname(configuration.server.host, port: configuration.server.port),
            serverName: "standby",
            // Past the cap new connections wait in the listen backlog; open ones keep being served.
            availableConnectionsDelegate: MaximumAvailableConnections(
                configuration.server.maxConnections, logger: logger.forService("connections"))),
        services: withTicker ? backgroundServices(components: components, logger: logger) : [],
        onServerRunning: { channel in
            logger.info(
                "standby is listening", metadata: ["address": .string("\(channel.localAddress.map { "\($0)" } ?? "?")")]
            )
        },
        logger: logger
    )
}

public func buildRouter(components: StandbyComponents) throws -> Router<StandbyRequestContext> {
    let configuration = components.configuration
    let authenticator = Authenticator(auth: configuration.auth, metricsToken: configuration.server.metricsToken)
    let router = Router(context: StandbyRequestContext.self)
    router.add(middleware: MetricsMiddleware(metrics: components.metrics))
    router.add(middleware: ProblemMiddleware())
    MetricsController(
        metrics: components.metrics, controlPlane: components.controlPlane, timeSource: components.timeSource,
        authenticator: authenticator
    ).register(on: router)
    router.get("openapi.yaml") { _, _ in
        Response(
            status: .ok, headers: [.contentType: "application/yaml; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(string: EmbeddedOpenAPI.yaml + "\n")))
    }
    try ConsoleController(authenticator: authenticator, components: components, settings: configuration.console)
        .register(on: router)
    HealthController(store: components.store, readiness: components.readiness, timeSource: components.timeSource)
        .register(on: router)
    let ingest = AlertIngest(
        topology: configuration.topology, controlPlane: components.controlPlane,
        timeSource: components.timeSource, ids: components.ids, metrics: components.metrics)
    let secureWebhook = configuration.auth.secureWebhook.map {
        SecureWebhookVerifier(settings: $0, logger: Logger(label: "standby.secure-webhook"))
    }
    router.addRoutes(
        WebhookController(
            authenticator: authenticator, secureWebhook: secureWebhook,
            allowedSubscriptions: Set(configuration.auth.secureWebhook?.allowedSubscriptions ?? []),
            maxBodyBytes: configuration.server.maxBodyBytes, ingest: ingest
        ).endpoints,
        atPath: "/webhooks/azure-monitor")
    let readers = router.group("v1").add(middleware: APIAuthMiddleware(authenticator: authenticator, role: .reader))
    // The read and operator routes: the server generated from openapi/standby.yaml.
    try GeneratedAPI(
        store: components.store, instance: components.instance, controlPlane: components.controlPlane,
        alerts: components.alerts, jobs: components.jobs,
        history: components.history, timeSource: components.timeSource
    ).registerHandlers(on: router.group().add(middleware: IdentityMiddleware(authenticator: authenticator)))
    let reporters = router.group("v1").add(middleware: APIAuthMiddleware(authenticator: authenticator, role: .reporter))
    reporters.addRoutes(
        HealthReportsController(
            controlPlane: components.controlPlane, topology: configuration.topology, timeSource: components.timeSource,
            ids: components.ids, maxBodyBytes: configuration.server.maxBodyBytes, metrics: components.metrics
        ).endpoints,
        atPath: "health-reports")
    reporters.addRoutes(
        ReadinessController(
            controlPlane: components.controlPlane, topology: configuration.topology, timeSource: components.timeSource,
            ids: components.ids, maxBodyBytes: configuration.server.maxBodyBytes
        ).endpoints,
        atPath: "readiness-reports")
    let jobs = JobsController(
        jobs: components.jobs, topology: configuration.topology, timeSource: components.timeSource)
    readers.addRoutes(EventsController(history: components.history).endpoints, atPath: "events")
    let incidents = IncidentController(
        controlPlane: components.controlPlane, topology: configuration.topology, timeSource: components.timeSource)
    let drills = DrillsController(
        controlPlane: components.controlPlane, history: components.history, topology: configuration.topology,
        timeSource: components.timeSource)
    readers.addRoutes(incidents.readEndpoints)
    readers.addRoutes(drills.readEndpoints)
    let operators = router.group("v1").add(middleware: APIAuthMiddleware(authenticator: authenticator, role: .operator))
    operators.addRoutes(incidents.operatorEndpoints)
    operators.addRoutes(drills.operatorEndpoints)
    operators.addRoutes(
        ReplaysController(
            configuration: configuration, history: components.history, store: components.store,
            alerts: components.alerts, timeSource: components.timeSource
        ).endpoints,
        atPath: "replays")
    router.group("v1").add(middleware: APIAuthMiddleware(authenticator: authenticator, anyOf: [.reporter, .operator]))
        .addRoutes(jobs.registrationEndpoints)
    return router
}
