import Foundation
import Logging
import ServiceLifecycle
import StandbyApp
import StandbyCore
import StandbyPrimitives

/// Re-evaluates the time-based rules (staleness, failback stability, cooldown expiry, maintenance
/// windows, pause expiry) every second, and gives up on commands past their acknowledgement deadline.
public struct DecisionTicker: Service {
    let controlPlane: ControlPlane
    let leadership: Leadership
    let timeSource: any TimeSource
    let interval: Duration
    let logger: Logger

    public init(
        controlPlane: ControlPlane, leadership: Leadership, timeSource: any TimeSource,
        interval: Duration = .seconds(1), logger: Logger
    ) {
        self.controlPlane = controlPlane
        self.leadership = leadership
        self.timeSource = timeSource
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        await repeatWhileLeading(leadership, every: interval) {
            do {
                try await controlPlane.tick(now: timeSource.now())
                try await controlPlane.expireOverdueCommands(now: timeSource.now())
            } catch is CancellationError {
            } catch {
                logger.warning("decision tick failed; retrying", metadata: ["error": .string("\(error)")])
            }
        }
    }
}

/// `repeatUntilShutdown`, with `body` skipped while this instance does not lead.
func repeatWhileLeading(
    _ leadership: Leadership, every interval: Duration, _ body: @escaping @Sendable () async -> Void
) async {
    await repeatUntilShutdown(every: interval) {
        guard leadership.currentEpoch != nil else { return }
        await body()
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
