import Foundation
import StandbyPrimitives
import Synchronization

// Singleton work (command dispatch, the decision ticker, lease reaping, pruning, checkpoints) runs
// on one instance only: the holder of the `leader` lease. The lease lives in the store, expires in
// the store's time unless renewed, and carries a fencing epoch that grows at every change of
// holder. Every write of singleton work checks, in its own transaction, that this instance still
// holds the lease under that epoch (`ControlTransaction.requireLease`), so a former holder that
// was paused or cut off cannot write after another took over.

/// The leader lease as the store returned it.
public struct LeaderLease: Sendable, Hashable {
    public var holder: String
    public var epoch: Int
    /// In the store's clock; nil for a lease that never lapses (one embedded instance).
    public var expiresAt: Date?

    public init(holder: String, epoch: Int, expiresAt: Date?) {
        self.holder = holder
        self.epoch = epoch
        self.expiresAt = expiresAt
    }
}

/// Whether this instance leads now, and under which epoch. The heartbeat updates it; singleton
/// services read it before each pass. Locally a lease is trusted for `ttl` from when its renewal
/// was *sent* (never from when the answer came), so this instance stops leading no later than the
/// store lets the lease lapse.
public final class Leadership: Sendable {
    public let instanceId: String
    private let state: Mutex<State>

    private struct State {
        var lease: LeaderLease?
        /// Until when the lease is trusted here; nil: for ever (an embedded store).
        var trustedUntil: ContinuousClock.Instant?
        var permanent: Bool
    }

    /// A leadership that the heartbeat keeps (a shared store).
    public init(instanceId: String) {
        self.instanceId = instanceId
        state = Mutex(State(lease: nil, trustedUntil: nil, permanent: false))
    }

    /// The only instance of an embedded store, which leads for as long as it runs.
    public static func permanent(instanceId: String) -> Leadership {
        let leadership = Leadership(instanceId: instanceId)
        leadership.state.withLock {
            $0 = State(
                lease: LeaderLease(holder: instanceId, epoch: 1, expiresAt: nil), trustedUntil: nil, permanent: true)
        }
        return leadership
    }

    /// The epoch this instance leads under now, or nil when it does not lead.
    public var currentEpoch: Int? {
        state.withLock { state in
            guard let lease = state.lease, lease.holder == instanceId else { return nil }
            if state.permanent { return lease.epoch }
            guard let until = state.trustedUntil, ContinuousClock.now < until else { return nil }
            return lease.epoch
        }
    }

    /// The lease as last seen, whoever holds it.
    public var lastSeen: LeaderLease? { state.withLock { $0.lease } }

    /// Records the lease a heartbeat sent at `sentAt` got back.
    public func update(_ lease: LeaderLease, sentAt: ContinuousClock.Instant, ttl: Duration) {
        state.withLock { state in
            guard !state.permanent else { return }
            state.lease = lease
            state.trustedUntil = lease.holder == instanceId ? sentAt + ttl : nil
        }
    }

    /// Stops leading at once: a guarded write was refused, or the store cannot be reached.
    public func stepDown() {
        state.withLock { state in
            guard !state.permanent else { return }
            state.trustedUntil = nil
        }
    }
}

/// The store as singleton work sees it: every unit of work first checks, in its transaction, that
/// this instance holds the leader lease under the epoch it believes; a refused check makes the
/// instance step down and the unit fail with `StoreError.fenced`, writing nothing.
public struct LeaderFencedStore: ControlStore {
    let base: any ControlStore
    let leadership: Leadership

    public init(base: any ControlStore, leadership: Leadership) {
        self.base = base
        self.leadership = leadership
    }

    private func epoch() throws -> Int {
        guard let epoch = leadership.currentEpoch else {
            throw StoreError.fenced("instance \(leadership.instanceId) does not hold the leader lease")
        }
        return epoch
    }

    private func stepDownWhenFenced<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as StoreError {
            if case .fenced = error { leadership.stepDown() }
            throw error
        }
    }

    public func write<T: Sendable>(_ work: @escaping @Sendable (any ControlTransaction) throws -> T) async throws -> T {
        let epoch = try epoch()
        let holder = leadership.instanceId
        return try await stepDownWhenFenced {
            try await base.write { transaction in
                try transaction.requireLease(holder: holder, epoch: epoch)
                return try work(transaction)
            }
        }
    }

    public func sharedWrite<T: Sendable>(
        lane: WriteLane, weight: Int, readAhead: ReadAhead,
        _ work: @escaping @Sendable (SharedUnitsOfWork) throws -> T
    ) async throws -> T {
        let epoch = try epoch()
        let holder = leadership.instanceId
        return try await stepDownWhenFenced {
            try await base.sharedWrite(lane: lane, weight: weight, readAhead: readAhead) { units in
                try units.transaction.requireLease(holder: holder, epoch: epoch)
                return try work(units)
            }
        }
    }

    public func read<T: Sendable>(_ work: @escaping @Sendable (any ControlReads) throws -> T) async throws -> T {
        try await base.read(work)
    }

    public func checkReady(now: Date) async throws { try await base.checkReady(now: now) }

    public func cluster(seenFrom instance: InstanceIdentity, now: Date) async throws -> ClusterView {
        try await base.cluster(seenFrom: instance, now: now)
    }

    public func heartbeat(_ instance: InstanceIdentity, leaseTTL: TimeInterval, now: Date) async throws -> LeaderLease {
        try await base.heartbeat(instance, leaseTTL: leaseTTL, now: now)
    }
}
