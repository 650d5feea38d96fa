import Foundation
import StandbyPrimitives

// The decision engine's vocabulary: the commands and failover plans it emits, the per-deployment
// state it keeps, the hub status it reads, and the operator requests it takes.

public enum CommandKind: String, Sendable, Codable, CaseIterable {
    case routeTraffic = "route_traffic"
    case scaleCompute = "scale_compute"
    case removeFromRotation = "remove_from_rotation"
    case restoreToRotation = "restore_to_rotation"
}

/// One instruction for the application layer, as decided (the store gives it a status).
public struct CommandPlan: Sendable, Hashable, Codable {
    public var id: String
    public var kind: CommandKind
    /// The hub the command acts on (scaled, removed, restored); for `route_traffic` the target.
    public var hub: String
    public var fromHub: String?
    public var toHub: String?
    public var parameters: [String: String]

    public init(
        id: String, kind: CommandKind, hub: String, fromHub: String?, toHub: String?, parameters: [String: String]
    ) {
        self.id = id
        self.kind = kind
        self.hub = hub
        self.fromHub = fromHub
        self.toHub = toHub
        self.parameters = parameters
    }
}

public enum FailoverKind: String, Sendable, Codable, CaseIterable {
    case failover
    case failback
    case rotationRemove = "rotation_remove"
    case rotationRestore = "rotation_restore"
    /// Single-region: nowhere to move; the outage and its end are recorded for operators.
    case outage
    case outageEnded = "outage_ended"
}

public enum FailoverTrigger: String, Sendable, Codable, CaseIterable {
    case window
    case alert
    case stability
    case `operator`
    /// A practice run an operator started; the engine fails back when it is over.
    case drill
}

/// One transition of a deployment's routing, with its reason and its commands.
public struct FailoverPlan: Sendable, Hashable, Codable {
    public var id: String
    public var deploymentId: String
    public var kind: FailoverKind
    public var trigger: FailoverTrigger
    public var fromHub: String?
    public var toHub: String?
    /// Human-readable: which window/alert/operator, which rule.
    public var reason: String
    public var rule: String
    public var evidence: [String]
    public var actor: String
    public var dryRun: Bool
    public var commands: [CommandPlan]
    /// Hubs whose running training jobs become interrupted by this move.
    public var interruptedHubs: [String]
    /// Where the interrupted jobs are resubmitted; nil when nothing survives (single-region).
    public var resubmitTo: String?
    public var decidedAt: Date

    public init(
        id: String, deploymentId: String, kind: FailoverKind, trigger: FailoverTrigger, fromHub: String?,
        toHub: String?, reason: String, rule: String, evidence: [String], actor: String, dryRun: Bool,
        commands: [CommandPlan], interruptedHubs: [String], resubmitTo: String?, decidedAt: Date
    ) {
        self.id = id
        self.deploymentId = deploymentId
        self.kind = kind
        self.trigger = trigger
        self.fromHub = fromHub
        self.toHub = toHub
        self.reason = reason
        self.rule = rule
        self.evidence = evidence
        self.actor = actor
        self.dryRun = dryRun
        self.commands = commands
        self.interruptedHubs = interruptedHubs
        self.resubmitTo = resubmitTo
        self.decidedAt = decidedAt
    }
}

/// What the engine knows of a hub when it decides: its health and why.
public struct HubStatus: Sendable, Hashable {
    public var health: HubHealth
    public var healthySince: Date?
    /// The sources that are DOWN and the rules that made them so, for the decision's reason.
    public var downSources: [String]
    public var downRules: [String]
    public var evidence: [String]
    public var windowId: String?
    public var readiness: ReadinessSummary

    public init(
        health: HubHealth, healthySince: Date? = nil, downSources: [String] = [], downRules: [String] = [],
        evidence: [String] = [], windowId: String? = nil, readiness: ReadinessSummary = ReadinessSummary()
    ) {
        self.readiness = readiness
        self.health = health
        self.healthySince = healthySince
        self.downSources = downSources
        self.downRules = downRules
        self.evidence = evidence
        self.windowId = windowId
    }

    public init(_ state: HubHealthState, policy: Policy, now: Date) {
        let states = state.sourceStates(now: now, policy: policy)
        let down = states.filter { $0.value == .down }.keys.sorted()
        self.init(
            health: state.health, healthySince: state.healthySince, downSources: down,
            downRules: down.map { source in state.azure[source]?.rule ?? "failure-threshold" },
            evidence: (state.openWindow?.evidence ?? []) + down.compactMap { state.azure[$0]?.evidence },
            windowId: state.openWindow?.id,
            readiness: ReadinessSummary(state.readiness ?? [:], now: now, staleAfter: policy.readinessStaleAfter))
    }
}

/// The routing state of one deployment, as the engine keeps it between signals.
public struct DeploymentState: Sendable, Hashable, Codable {
    /// Hubs currently serving: one for active-passive and single-region, the rotation for active-active.
    public var serving: [String]
    public var paused = false
    public var pausedReason: String?
    /// When a pause ends by itself; nil for a pause until an operator resumes.
    public var pausedUntil: Date?
    public var lastMoveAt: Date?
    /// Times of automatic moves in the last hour, for `maxFailoversPerHour`.
    public var automaticMoves: [Date] = []
    /// The failover event whose commands are not all acknowledged yet (at most one).
    public var openEventId: String?
    /// Why automation is holding, if it is; kept so a hold is recorded once, not every second.
    public var hold: String?
    /// Active-passive manual failback: the primary is stable and an operator may fail back.
    public var failbackReady = false
    /// Single-region: an outage is recorded and not yet over.
    public var outageOpen = false
    /// The maintenance windows in effect at the last evaluation, so that their start and end are
    /// each recorded once. (Optional: states stored before maintenance existed decode without it.)
    public var maintenance: [MaintenanceWindow]?
    /// The incident the deployment is in: the id of the decision that moved it away from where its
    /// policy wants it (or found no target), until it is back there.
    public var incidentId: String?
    /// The drill in progress, if any.
    public var drill: DrillState?

    public static func initial(for deployment: DeploymentDefinition) -> DeploymentState {
        switch deployment.pattern {
        case .activeActive:
            return DeploymentState(serving: deployment.hubs.map(\.id))
        case .activePassive, .singleRegion:
            let primary = deployment.hubs.first { $0.role == .primary } ?? deployment.hubs[0]
            return DeploymentState(serving: [primary.id])
        }
    }

    public var automation: String {
        if paused { return "paused" }
        if hold != nil { return "held" }
        return "active"
    }
}

public enum Decision: Sendable, Hashable {
    case move(FailoverPlan)
    /// Automation wants to act but a guardrail stops it; recorded once per reason.
    case hold(String)
    case holdCleared
    case failbackReady(String)
    /// A hub is DOWN and there is nowhere to move (both hubs down, the last serving hub): recorded
    /// once per reason, like a hold.
    case noTarget(String)
    /// An automatic move involving a hub in maintenance was not made; recorded once per reason.
    case suppressed(String, windowId: String)
    /// A pause with `until` ran out: automation is active again.
    case pauseExpired(reason: String?)
    case maintenanceStarted(MaintenanceWindow)
    case maintenanceEnded(MaintenanceWindow)
    case drill(DrillChange)
}

public enum OperatorAction: String, Sendable, Codable, CaseIterable {
    case failover
    case failback
    case pause
    case resume
}

public struct OperatorRequest: Sendable, Hashable {
    public var action: OperatorAction
    public var reason: String
    public var actor: String
    /// Overrides cooldown, rate limit and an open failover; never routes to a DOWN hub on its own.
    public var force: Bool
    /// With `force`, allows a DOWN target too.
    public var allowUnhealthyTarget: Bool
    /// For failover: the hub to move to (active-passive) or to take out (active-active).
    public var hub: String?
    /// For pause: when automation resumes by itself.
    public var until: Date?

    public init(
        action: OperatorAction, reason: String, actor: String, force: Bool = false,
        allowUnhealthyTarget: Bool = false, hub: String? = nil, until: Date? = nil
    ) {
        self.until = until
        self.action = action
        self.reason = reason
        self.actor = actor
        self.force = force
        self.allowUnhealthyTarget = allowUnhealthyTarget
        self.hub = hub
    }
}

public struct OperatorRefusal: Error, Sendable, Hashable, CustomStringConvertible {
    public var reason: String
    public var description: String { reason }
}

/// The pure decision engine (DESIGN §4, STYLE §7): state, hub health and time in; new state and
/// decisions out. It performs nothing: the caller persists the plans and dispatches commands.
