import Foundation
import ServiceLifecycle
import StandbyApp
import StandbyCore
import StandbyPrimitives

/// Returns expired leases to the queue even when no worker is claiming.
public struct LeaseReaper: Service {
    let jobs: JobQueue
    let timeSource: any TimeSource
    let interval: Duration

    public init(jobs: JobQueue, timeSource: any TimeSource, interval: Duration = .seconds(5)) {
        self.jobs = jobs
        self.timeSource = timeSource
        self.interval = interval
    }

    public func run() async throws {
        await repeatUntilShutdown(every: interval) {
            _ = try? await jobs.reapExpiredLeases(now: timeSource.now())
        }
    }
}
