import Foundation
import Logging
import ServiceLifecycle
import StandbyApp
import StandbyPrimitives

/// Keeps this instance registered among those sharing the store and takes or renews the leader
/// lease, every third of `cluster.leaseTTL`, so a leader's loss is noticed within the TTL.
public struct ClusterHeartbeat: Service {
    let store: any ControlStore
    let instance: InstanceIdentity
    let leadership: Leadership
    let leaseTTL: TimeInterval
    let timeSource: any TimeSource
    let logger: Logger

    public init(
        store: any ControlStore, instance: InstanceIdentity, leadership: Leadership, leaseTTL: TimeInterval,
        timeSource: any TimeSource, logger: Logger
    ) {
        self.store = store
        self.instance = instance
        self.leadership = leadership
        self.leaseTTL = leaseTTL
        self.timeSource = timeSource
        self.logger = logger
    }

    public func run() async throws {
        let ttl = Duration.milliseconds(Int64(leaseTTL * 1000))
        await repeatUntilShutdown(every: ttl / 3) {
            await beat(ttl: ttl)
        }
    }

    /// One renewal: the lease is trusted from when it was sent, never from when the answer came.
    func beat(ttl: Duration) async {
        // As last seen, not as trusted now: after a pause the lease may have lapsed here already.
        let previous = leadership.lastSeen
        let sentAt = ContinuousClock.now
        do {
            let lease = try await store.heartbeat(instance, leaseTTL: leaseTTL, now: timeSource.now())
            leadership.update(lease, sentAt: sentAt, ttl: ttl)
            let wasLeading = previous?.holder == instance.id
            let leading = lease.holder == instance.id
            if leading != wasLeading || (leading && previous?.epoch != lease.epoch) {
                if leading {
                    logger.notice(
                        "this instance leads the singleton work",
                        metadata: ["instance": .string(instance.id), "epoch": .string("\(lease.epoch)")])
                } else {
                    logger.notice(
                        "this instance no longer leads", metadata: ["leader": .string(lease.holder)])
                }
            }
        } catch is CancellationError {
        } catch {
            // The lease lapses by itself once its TTL from the last renewal has passed.
            logger.warning("cluster heartbeat failed", metadata: ["error": .string("\(error)")])
        }
    }
}
