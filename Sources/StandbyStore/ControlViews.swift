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
    public var status: String
    public var createdAt: String
    public var updatedAt: String
    public var ackOutcome: String?
    public var ackDetail: String?
    public var ackActor: String?
    public var ackedAt: String?
    public var deliveryAttempts: Int
    public var lastError: String?
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
    public var status: String
    public var createdAt: String
    public var settledAt: String?
    public var commands: [CommandView]
}

public struct DeploymentView: Sendable, Hashable, Codable {
    public var id: String
    public var pattern: DeploymentPattern
    public var serving: [String]
    public var automation: AutomationView
    public var hubs: [HubView]
    public var lastFailover: FailoverEventView?
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

    /// The status a new command of `plan` starts in.
    static func initial(dryRun: Bool) -> CommandStatus { dryRun ? .dryRun : .pending }
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
}
