import Foundation
import ServiceLifecycle
import StandbyApp
import StandbyCore
import StandbyPrimitives

/// Returns expired leases to the queue even when no worker is claiming.
public struct LeaseReaper: Service {
    let jobs: JobQueue
    let leadership: Leadership
    let timeSource: any TimeSource
    let interval: Duration

    public init(jobs: JobQueue, leadership: Leadership, timeSource: any TimeSource, interval: Duration = .seconds(5)) {
        self.jobs = jobs
        self.leadership = leadership
        self.timeSource = timeSource
        self.interval = interval
    }

    public func run() async throws {
        await repeatWhileLeading(leadership, every: interval) {
            _ = try? await jobs.reapExpiredLeases(now: timeSource.now())
        }
    }
}
