import Foundation
import StandbyCore
import StandbyPrimitives

/// A validated health report, ready to store.
public struct HealthReportInput: Sendable, Hashable {
    public var id: String
    public var deploymentId: String
    public var hubId: String
    public var source: String
    public var outcome: ObservationOutcome
    public var observedAt: Date
    public var latencyMs: Double?
    public var statusCode: Int?
    public var detail: String?

    public init(
        id: String, deploymentId: String, hubId: String, source: String, outcome: ObservationOutcome,
        observedAt: Date, latencyMs: Double?, statusCode: Int?, detail: String?
    ) {
        self.id = id
        self.deploymentId = deploymentId
        self.hubId = hubId
        self.source = source
        self.outcome = outcome
        self.observedAt = observedAt
        self.latencyMs = latencyMs
        self.statusCode = statusCode
        self.detail = detail
    }
}

public struct ReportReceipt: Sendable, Hashable, Codable {
    public var id: String
    public var hub: String
    public var source: String
    public var observedAt: String
    /// `accepted`, or `duplicate` when (hub, source, observedAt) was already stored.
    public var status: String

    /// The JSON its synthesized `Encodable` writes, without JSONEncoder: every report's receipt carries it.
    public func jsonValue() -> JSONValue {
        .object([
            "id": .string(id), "hub": .string(hub), "source": .string(source), "observedAt": .string(observedAt),
            "status": .string(status),
        ])
    }

    public init(
        id: String, hub: String, source: String, observedAt: String, status: String
    ) {
        self.id = id
        self.hub = hub
        self.source = source
        self.observedAt = observedAt
        self.status = status
    }
}

public struct SourceView: Sendable, Hashable, Codable {
    public var source: String
    public var kind: String
    public var state: SourceState
    public var lastObservedAt: String?
    public var consecutiveFailures: Int?
    public var consecutiveSuccesses: Int?
    public var rule: String?
    public var label: String?
    public var evidence: String?

    public init(
        source: String, kind: String, state: SourceState, lastObservedAt: String? = nil,
        consecutiveFailures: Int? = nil, consecutiveSuccesses: Int? = nil, rule: String? = nil, label: String? = nil,
        evidence: String? = nil
    ) {
        self.source = source
        self.kind = kind
        self.state = state
        self.lastObservedAt = lastObservedAt
        self.consecutiveFailures = consecutiveFailures
        self.consecutiveSuccesses = consecutiveSuccesses
        self.rule = rule
        self.label = label
        self.evidence = evidence
    }
}

public struct FailureWindowView: Sendable, Hashable, Codable {
    public var id: String
    public var deploymentId: String
    public var hubId: String
    public var open: Bool
    public var openedAt: String
    public var firstFailureAt: String
    public var lastFailureAt: String
    public var failureCount: Int
    public var sources: [String]
    public var evidence: [String]
    public var declaredDownAt: String?
    public var closedAt: String?

    public init(
        id: String, deploymentId: String, hubId: String, open: Bool, openedAt: String, firstFailureAt: String,
        lastFailureAt: String, failureCount: Int, sources: [String], evidence: [String], declaredDownAt: String? = nil,
        closedAt: String? = nil
    ) {
        self.id = id
        self.deploymentId = deploymentId
        self.hubId = hubId
        self.open = open
        self.openedAt = openedAt
        self.firstFailureAt = firstFailureAt
        self.lastFailureAt = lastFailureAt
        self.failureCount = failureCount
        self.sources = sources
        self.evidence = evidence
        self.declaredDownAt = declaredDownAt
        self.closedAt = closedAt
    }
}

public struct HubView: Sendable, Hashable, Codable {
    public var id: String
    public var region: String
    public var regionName: String
    public var role: HubRole
    public var endpoint: String
    public var serving: Bool
    public var health: HubHealth
    public var healthSince: String?
    public var sources: [SourceView]
    public var openWindow: FailureWindowView?
    /// Whether the hub could take traffic: each readiness check as last reported.
    public var readiness: [ReadinessView]

    public init(
        id: String, region: String, regionName: String, role: HubRole, endpoint: String, serving: Bool,
        health: HubHealth, healthSince: String? = nil, sources: [SourceView], openWindow: FailureWindowView? = nil,
        readiness: [ReadinessView] = []
    ) {
        self.readiness = readiness
        self.id = id
        self.region = region
        self.regionName = regionName
        self.role = role
        self.endpoint = endpoint
        self.serving = serving
        self.health = health
        self.healthSince = healthSince
        self.sources = sources
        self.openWindow = openWindow
    }
}

public struct AutomationView: Sendable, Hashable, Codable {
    /// `active`, `paused`, `held` (a guardrail stops a wanted move) or `dry-run`.
    public var state: String
    public var reason: String?
    public var paused: Bool
    public var dryRun: Bool
    public var failbackReady: Bool
    public var openFailoverEventId: String?
    public var automaticMovesLastHour: Int
    public var lastMoveAt: String?
    /// When a pause ends by itself.
    public var pausedUntil: String?
    /// The maintenance windows in effect at the last decision.
    public var maintenanceWindows: [String]

    public init(
        state: String, reason: String? = nil, paused: Bool, dryRun: Bool, failbackReady: Bool,
        openFailoverEventId: String? = nil, automaticMovesLastHour: Int, lastMoveAt: String? = nil,
        pausedUntil: String? = nil, maintenanceWindows: [String] = []
    ) {
        self.pausedUntil = pausedUntil
        self.maintenanceWindows = maintenanceWindows
        self.state = state
        self.reason = reason
        self.paused = paused
        self.dryRun = dryRun
        self.failbackReady = failbackReady
        self.openFailoverEventId = openFailoverEventId
        self.automaticMovesLastHour = automaticMovesLastHour
        self.lastMoveAt = lastMoveAt
    }
}

public struct CommandView: Sendable, Hashable, Codable {
    public var id: String
    public var deploymentId: String
    public var failoverEventId: String
    public var position: Int
    public var kind: String
    public var hub: String
    public var fromHub: String?
    public var toHub: String?
    public var parameters: [String: String]
    public var status: CommandStatus
    public var createdAt: String
    public var updatedAt: String
    public var ackOutcome: String?
    public var ackDetail: String?
    public var ackActor: String?
    public var ackedAt: String?
    public var deliveryAttempts: Int
    public var lastError: String?

    public init(
        id: String, deploymentId: String, failoverEventId: String, position: Int, kind: String, hub: String,
        fromHub: String? = nil, toHub: String? = nil, parameters: [String: String], status: CommandStatus,
        createdAt: String, updatedAt: String, ackOutcome: String? = nil, ackDetail: String? = nil,
        ackActor: String? = nil, ackedAt: String? = nil, deliveryAttempts: Int, lastError: String? = nil
    ) {
        self.id = id
        self.deploymentId = deploymentId
        self.failoverEventId = failoverEventId
        self.position = position
        self.kind = kind
        self.hub = hub
        self.fromHub = fromHub
        self.toHub = toHub
        self.parameters = parameters
        self.status = status
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.ackOutcome = ackOutcome
        self.ackDetail = ackDetail
        self.ackActor = ackActor
        self.ackedAt = ackedAt
        self.deliveryAttempts = deliveryAttempts
        self.lastError = lastError
    }
}

public struct FailoverEventView: Sendable, Hashable, Codable {
    public var id: String
    public var deploymentId: String
    public var kind: String
    public var trigger: String
    public var fromHub: String?
    public var toHub: String?
    public var reason: String
    public var rule: String
    public var evidence: [String]
    public var actor: String
    public var dryRun: Bool
    public var status: FailoverEventStatus
    public var createdAt: String
    public var settledAt: String?
    public var commands: [CommandView]

    public init(
        id: String, deploymentId: String, kind: String, trigger: String, fromHub: String? = nil, toHub: String? = nil,
        reason: String, rule: String, evidence: [String], actor: String, dryRun: Bool, status: FailoverEventStatus,
        createdAt: String, settledAt: String? = nil, commands: [CommandView]
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
        self.status = status
        self.createdAt = createdAt
        self.settledAt = settledAt
        self.commands = commands
    }
}

public struct DeploymentView: Sendable, Hashable, Codable {
    public var id: String
    public var pattern: DeploymentPattern
    public var serving: [String]
    public var automation: AutomationView
    public var hubs: [HubView]
    public var lastFailover: FailoverEventView?

    public init(
        id: String, pattern: DeploymentPattern, serving: [String], automation: AutomationView, hubs: [HubView],
        lastFailover: FailoverEventView? = nil
    ) {
        self.id = id
        self.pattern = pattern
        self.serving = serving
        self.automation = automation
        self.hubs = hubs
        self.lastFailover = lastFailover
    }
}

public enum CommandAckOutcome: String, Sendable, Codable, CaseIterable {
    case succeeded
    case failed
}

public enum OperatorOutcome: Sendable {
    case moved(FailoverEventView)
    case updated(DeploymentView)
}

/// A command's place in the outbox: the values of `commands.status`.
public enum CommandStatus: String, Sendable, Codable, CaseIterable {
    case pending
    case delivered
    case succeeded
    case failed
    case dryRun = "dry_run"
    case superseded
    /// Neither acknowledged nor settled within `dispatch.ackDeadline`: given up on, its event failed.
    case expired

    /// The status a new command of `plan` starts in.
    public static func initial(dryRun: Bool) -> CommandStatus { dryRun ? .dryRun : .pending }
}

/// Where a failover event stands: the values of `failover_events.status`.
public enum FailoverEventStatus: String, Sendable, Codable, CaseIterable {
    case open
    case completed
    case failed
    case superseded
    /// An event without commands (a single-region outage): nothing to wait for.
    case recorded
    case dryRun = "dry_run"

    /// The status a newly decided plan is recorded in.
    public static func initial(for plan: FailoverPlan) -> FailoverEventStatus {
        plan.commands.isEmpty ? .recorded : (plan.dryRun ? .dryRun : .open)
    }
}
