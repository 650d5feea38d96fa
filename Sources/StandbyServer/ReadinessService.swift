import ServiceLifecycle

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
