import Foundation
import Logging
import ServiceLifecycle
import StandbyApp
import StandbyCore
import StandbyPrimitives

/// Re-evaluates the time-based rules (staleness, failback stability, cooldown expiry) every second.
public struct DecisionTicker: Service {
    let controlPlane: ControlPlane
    let timeSource: any TimeSource
    let interval: Duration
    let logger: Logger

    public init(
        controlPlane: ControlPlane, timeSource: any TimeSource, interval: Duration = .seconds(1), logger: Logger
    ) {
        self.controlPlane = controlPlane
        self.timeSource = timeSource
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        await repeatUntilShutdown(every: interval) {
            do {
                try await controlPlane.tick(now: timeSource.now())
            } catch is CancellationError {
            } catch {
                logger.warning("decision tick failed; retrying", metadata: ["error": .string("\(error)")])
            }
        }
    }
}

/// Runs `body`, then waits `interval`, until graceful shutdown begins; a shutdown interrupts the
/// wait at once, so stopping never waits for a timer.
func repeatUntilShutdown(every interval: Duration, _ body: @escaping @Sendable () async -> Void) async {
    try? await cancelWhenGracefulShutdown {
        while !Task.isCancelled {
            await body()
            try await Task.sleep(for: interval)
        }
    }
}
