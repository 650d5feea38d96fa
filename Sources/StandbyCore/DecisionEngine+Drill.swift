import Foundation
import StandbyPrimitives

/// A drill in progress: a real, announced failover to the secondary, held for `holdFor` once its
/// commands are acknowledged, then failed back by the engine.
public struct DrillState: Sendable, Hashable, Codable {
    public enum Phase: String, Sendable, Hashable, Codable {
        case failingOver = "failing_over"
        case holding
        case failingBack = "failing_back"
    }

    public var id: String
    public var phase: Phase
    public var holdFor: TimeInterval
    public var holdUntil: Date?
    /// The hub the drill moves away from (the primary) and the one it moves to.
    public var fromHub: String
    public var toHub: String
    public var failoverEventId: String
    public var failbackEventId: String?
    /// Why the drill stopped short, when it did.
    public var abortReason: String?
}

/// What a drill did at a step, for the shell to record and announce.
public enum DrillChange: Sendable, Hashable {
    /// The failover's commands are acknowledged: holding until `until`.
    case holding(drillId: String, until: Date)
    /// The failback is decided (`abortReason` when the drill was cut short).
    case failingBack(drillId: String, failbackEventId: String, abortReason: String?)
    /// Over: `completed` when it failed back as planned.
    case finished(drillId: String, completed: Bool, reason: String?)
}

public struct DrillRequest: Sendable, Hashable {
    public var reason: String
    public var actor: String
    public var holdFor: TimeInterval
    /// Whether the primary's running training jobs are interrupted and resubmitted (off by default).
    public var interruptJobs: Bool

    public init(reason: String, actor: String, holdFor: TimeInterval, interruptJobs: Bool = false) {
        self.reason = reason
        self.actor = actor
        self.holdFor = holdFor
        self.interruptJobs = interruptJobs
    }
}

extension DecisionEngine {
    /// Starts a drill: refused when a hub is DOWN or degraded, or unless the deployment serves where its policy wants
    /// it and no incident, open failover or other drill is in the way.
    public func startDrill(
        id: String, _ request: DrillRequest, state: inout DeploymentState, health: [String: HubStatus], now: Date
    ) throws(OperatorRefusal) -> FailoverPlan {
        if let drill = state.drill { throw OperatorRefusal(reason: "drill \(drill.id) is still running") }
        if deployment.pattern == .singleRegion {
            throw OperatorRefusal(reason: "\(deployment.id) is single-region: there is no hub to drill a failover to")
        }
        if state.paused { throw OperatorRefusal(reason: "automation is paused; resume it before a drill") }
        if let open = state.openEventId {
            throw OperatorRefusal(reason: "failover event \(open) is still awaiting acknowledgement")
        }
        if state.incidentId != nil || state.outageOpen
            || Set(state.serving) != Set(DeploymentState.initial(for: deployment).serving)
        {
            throw OperatorRefusal(reason: "a real incident is open: \(deployment.id) is not where its policy wants it")
        }
        // Unknown (no recent report) is not unhealthy, as for any failover target; DOWN and
        // degraded are.
        let unhealthy = deployment.hubs.filter { [.down, .degraded].contains(status($0.id, health).health) }
        if !unhealthy.isEmpty {
            throw OperatorRefusal(
                reason: "the deployment is not healthy: "
                    + unhealthy.map { "\($0.id) is \(status($0.id, health).health.rawValue)" }.joined(separator: ", "))
        }
        let from = primaryId
        guard let to = deployment.hubs.first(where: { $0.id != from })?.id else {
            throw OperatorRefusal(reason: "\(deployment.id) has no second hub")
        }
        let reason = "drill \(id) by \(request.actor): \(request.reason)"
        let move: FailoverPlan
        switch deployment.pattern {
        case .activeActive:
            move = plan(
                .rotationRemove, trigger: .drill, from: from, to: nil, reason: reason, rule: "drill", evidence: [],
                actor: request.actor, commands: [command(.removeFromRotation, hub: from)],
                interrupted: request.interruptJobs ? [from] : [], resubmitTo: to, now: now)
            state.serving.removeAll { $0 == from }
        case .activePassive, .singleRegion:
            move = plan(
                .failover, trigger: .drill, from: from, to: to, reason: reason, rule: "drill", evidence: [],
                actor: request.actor, commands: failoverCommands(from: from, to: to),
                interrupted: request.interruptJobs ? [from] : [], resubmitTo: to, now: now)
            state.serving = [to]
        }
        recordMove(&state, move, automatic: false, now: now)
        state.drill = DrillState(
            id: id, phase: .failingOver, holdFor: request.holdFor, fromHub: from, toHub: to,
            failoverEventId: move.id)
        return move
    }

    /// A failover event settled: the drill it belongs to holds, fails back, or is over.
    public func drillEventSettled(eventId: String, succeeded: Bool, state: inout DeploymentState, now: Date)
        -> [Decision]
    {
        guard var drill = state.drill else { return [] }
        if eventId == drill.failoverEventId, drill.phase == .failingOver {
            guard succeeded else {
                return drillFailback(&state, abortReason: "the drill's failover commands failed", now: now)
            }
            drill.phase = .holding
            let until = now.addingTimeInterval(drill.holdFor)
            drill.holdUntil = until
            state.drill = drill
            return [.drill(.holding(drillId: drill.id, until: until))]
        }
        if eventId == drill.failbackEventId {
            state.drill = nil
            let completed = succeeded && drill.abortReason == nil
            let reason = succeeded ? drill.abortReason : "the failback's commands failed"
            return [.drill(.finished(drillId: drill.id, completed: completed, reason: reason))]
        }
        return []
    }

    /// Aborts the drill: it fails back now (superseding a failover still in progress).
    public func abortDrill(reason: String, state: inout DeploymentState, now: Date) throws(OperatorRefusal)
        -> [Decision]
    {
        guard let drill = state.drill else { throw OperatorRefusal(reason: "no drill is running") }
        guard drill.phase != .failingBack else {
            throw OperatorRefusal(reason: "drill \(drill.id) is already failing back")
        }
        return drillFailback(&state, abortReason: reason, now: now)
    }

    /// While a drill runs, the engine only watches it: the target turning DOWN aborts it (back to
    /// the primary), the primary turning DOWN ends it where it is (a real incident now), and the
    /// end of the hold fails back.
    func evaluateDrill(_ drill: DrillState, _ state: inout DeploymentState, health: [String: HubStatus], now: Date)
        -> [Decision]
    {
        guard drill.phase != .failingBack else { return [] }
        if status(drill.fromHub, health).health == .down {
            state.drill = nil
            return [
                .drill(
                    .finished(
                        drillId: drill.id, completed: false,
                        reason: "\(drill.fromHub) turned DOWN during the drill; traffic stays on \(drill.toHub)"))
            ]
        }
        if status(drill.toHub, health).health == .down {
            return drillFailback(&state, abortReason: "\(drill.toHub) turned DOWN during the drill", now: now)
        }
        if drill.phase == .holding, let until = drill.holdUntil, now >= until {
            return drillFailback(&state, abortReason: nil, now: now)
        }
        return []
    }

    private func drillFailback(_ state: inout DeploymentState, abortReason: String?, now: Date) -> [Decision] {
        guard var drill = state.drill else { return [] }
        let reason =
            "drill \(drill.id): "
            + (abortReason.map { "aborted (\($0)); failing back" }
                ?? "hold of \(Int(drill.holdFor))s over; failing back")
        let move: FailoverPlan
        switch deployment.pattern {
        case .activeActive:
            move = plan(
                .rotationRestore, trigger: .drill, from: nil, to: drill.fromHub, reason: reason, rule: "drill",
                evidence: [], actor: "standby", commands: [command(.restoreToRotation, hub: drill.fromHub)],
                interrupted: [], now: now)
            if !state.serving.contains(drill.fromHub) { state.serving.insert(drill.fromHub, at: 0) }
        case .activePassive, .singleRegion:
            move = plan(
                .failback, trigger: .drill, from: drill.toHub, to: drill.fromHub, reason: reason, rule: "drill",
                evidence: [], actor: "standby", commands: failbackCommands(from: drill.toHub, to: drill.fromHub),
                interrupted: [], now: now)
            state.serving = [drill.fromHub]
        }
        recordMove(&state, move, automatic: false, now: now)
        drill.phase = .failingBack
        drill.failbackEventId = move.id
        drill.abortReason = abortReason
        state.drill = drill
        return [
            .move(move), .drill(.failingBack(drillId: drill.id, failbackEventId: move.id, abortReason: abortReason)),
        ]
    }
}
