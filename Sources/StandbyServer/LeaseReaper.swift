import Foundation
import ServiceLifecycle
import StandbyCore
import StandbyPrimitives
import StandbyStore

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
