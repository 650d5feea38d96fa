import Foundation
import Logging
import ServiceLifecycle
import StandbyCore
import StandbyStore

/// Re-evaluates the time-based rules (staleness, failback stability, cooldown expiry) every second.
public struct DecisionTicker: Service {
    let controlPlane: ControlPlane
    let timeSource: any TimeSource
    let interval: Duration
    let logger: Logger

    public init(controlPlane: ControlPlane, timeSource: any TimeSource, interval: Duration = .seconds(1), logger: Logger) {
        self.controlPlane = controlPlane
        self.timeSource = timeSource
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        while !Task.isCancelledOrShuttingDown {
            do {
                try await controlPlane.tick(now: timeSource.now())
            } catch {
                logger.warning("decision tick failed; retrying", metadata: ["error": .string("\(error)")])
            }
            try? await Task.sleep(for: interval)
        }
    }
}

extension Task where Success == Never, Failure == Never {
    static var isCancelledOrShuttingDown: Bool { Task.isCancelled || Task.isShuttingDownGracefully }
}
