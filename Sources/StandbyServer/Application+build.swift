import Foundation
import Hummingbird
import Logging
import Logging
import ServiceLifecycle
import StandbyCore
import StandbyStore

/// Everything a running Standby is made of, assembled once from the configuration.
public struct StandbyComponents: Sendable {
    public let configuration: StandbyConfiguration
    public let database: StandbyDatabase
    public let alerts: any AlertRepository
    public let readiness: Readiness
    public let timeSource: any TimeSource

    /// Opens the database and applies pending migrations.
    public init(configuration: StandbyConfiguration, timeSource: any TimeSource = SystemTimeSource()) throws {
        self.configuration = configuration
        self.timeSource = timeSource
        database = try StandbyDatabase(settings: configuration.database)
        try database.migrate()
        alerts = SQLiteAlertRepository(database: database)
        readiness = Readiness()
    }
}

/// Builds the HTTP application and its background services (STYLE §1: tests call this too).
public func buildApplication(
    components: StandbyComponents, logger: Logger
) -> some ApplicationProtocol {
    let configuration = components.configuration
    if configuration.auth.webhookTokens.isEmpty {
        logger.warning("no webhook token is configured: POST /webhooks/azure-monitor answers 401 to every delivery")
    }
    let router = buildRouter(components: components)
    return Application(
        router: router,
        configuration: .init(
            address: .hostname(configuration.server.host, port: configuration.server.port),
            serverName: "standby"),
        onServerRunning: { channel in
            logger.info("standby is listening", metadata: ["address": .string("\(channel.localAddress.map { "\($0)" } ?? "?")")])
        },
        logger: logger
    )
}

public func buildRouter(components: StandbyComponents) -> Router<StandbyRequestContext> {
    let configuration = components.configuration
    let authenticator = Authenticator(auth: configuration.auth)
    let router = Router(context: StandbyRequestContext.self)
    router.add(middleware: ProblemMiddleware())
    HealthController(database: components.database, readiness: components.readiness, timeSource: components.timeSource)
        .register(on: router)
    let ingest = AlertIngest(
        topology: configuration.topology, alerts: components.alerts, timeSource: components.timeSource)
    router.addRoutes(
        WebhookController(authenticator: authenticator, maxBodyBytes: configuration.server.maxBodyBytes, ingest: ingest)
            .endpoints,
        atPath: "/webhooks/azure-monitor")
    let readers = router.group("v1").add(middleware: APIAuthMiddleware(authenticator: authenticator, role: .reader))
    readers.addRoutes(AlertsController(alerts: components.alerts).endpoints, atPath: "alerts")
    return router
}

/// Marks the process unready when graceful shutdown begins. Placed after the application in the
/// service group, so that it is told first (shutdown runs in reverse order).
public struct ReadinessService: Service {
    let readiness: Readiness

    public init(readiness: Readiness) {
        self.readiness = readiness
    }

    public func run() async throws {
        try? await gracefulShutdown()
        readiness.beginDraining()
    }
}
