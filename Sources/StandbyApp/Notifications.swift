import Foundation
import StandbyCore
import StandbyPrimitives

// Notifications to people: what is worth a person's attention, which receivers hear of it (the
// routes), and the outbox row each receiver gets. Rendering for Slack, Teams, PagerDuty and the
// signed webhook is the server's (`NotificationPayloads.swift`); deciding what to say is here, in
// the unit of work that decided, so a notification commits with its cause or not at all.

/// The events a route can name (`notifications.routes[].events`).
public enum NotificationEvent: String, Sendable, Hashable, Codable, CaseIterable {
    case failover
    case failback
    case failbackReady = "failback_ready"
    case commandFailed = "command_failed"
    case commandExpired = "command_expired"
    case automationPaused = "automation_paused"
    case automationResumed = "automation_resumed"
    case pauseExpired = "pause_expired"
    case noTarget = "no_target"
    case maintenanceStarted = "maintenance_started"
    case maintenanceEnded = "maintenance_ended"
    case drillStarted = "drill_started"
    case drillFinished = "drill_finished"
    /// The deployment is back where its policy wants it: the incident is over.
    case resolved
}

/// PagerDuty's two event actions; the other receivers show a resolve as a recovery message.
public enum NotificationAction: String, Sendable, Hashable, Codable, CaseIterable {
    case trigger
    case resolve
}

/// PagerDuty's four severities, used by every receiver.
public enum NotificationSeverity: String, Sendable, Hashable, Codable, CaseIterable {
    case critical
    case error
    case warning
    case info
}

public enum NotificationStatus: String, Sendable, Hashable, Codable, CaseIterable {
    case pending
    case delivered
    case failed
}

/// What the control session decided to tell people, before routing.
public struct NotificationDraft: Sendable, Hashable {
    public var event: NotificationEvent
    public var deploymentId: String
    /// One line a person reads on a phone: "foundry-prod: failed over from eastus-hub to westus-hub — ...".
    public var summary: String
    public var severity: NotificationSeverity
    /// Stable for one incident (PagerDuty's `dedup_key`): the trigger and the resolve share it.
    public var incidentKey: String
    public var action: NotificationAction
    /// Facts shown beside the summary (hubs, failover event, window, reason).
    public var details: [String: String]
    public var at: Date

    public init(
        event: NotificationEvent, deploymentId: String, summary: String, severity: NotificationSeverity,
        incidentKey: String, action: NotificationAction = .trigger, details: [String: String], at: Date
    ) {
        self.event = event
        self.deploymentId = deploymentId
        self.summary = summary
        self.severity = severity
        self.incidentKey = incidentKey
        self.action = action
        self.details = details
        self.at = at
    }
}

/// `notifications.routes[]`: which events go to which receivers, optionally for some deployments.
public struct NotificationRoute: Sendable, Hashable {
    /// nil: every event.
    public var events: Set<NotificationEvent>?
    public var receivers: [String]
    /// nil: every deployment.
    public var deployments: Set<String>?

    public init(events: Set<NotificationEvent>?, receivers: [String], deployments: Set<String>?) {
        self.events = events
        self.receivers = receivers
        self.deployments = deployments
    }

    public func matches(_ event: NotificationEvent, deploymentId: String) -> Bool {
        (events?.contains(event) ?? true) && (deployments?.contains(deploymentId) ?? true)
    }
}

public struct NotificationRouting: Sendable, Hashable {
    public var routes: [NotificationRoute]

    public init(routes: [NotificationRoute] = []) {
        self.routes = routes
    }

    /// The receivers of `event` for `deploymentId`, each once, in the order the routes name them.
    public func receivers(for event: NotificationEvent, deploymentId: String) -> [String] {
        var seen: Set<String> = []
        return routes.filter { $0.matches(event, deploymentId: deploymentId) }.flatMap(\.receivers)
            .filter { seen.insert($0).inserted }
    }
}

/// One notification for one receiver, as the outbox keeps it and `GET /v1/notifications` shows it.
public struct NotificationView: Sendable, Hashable, Codable {
    public var id: String
    public var receiver: String
    public var event: NotificationEvent
    public var deploymentId: String
    public var incidentKey: String
    public var action: NotificationAction
    public var severity: NotificationSeverity
    public var summary: String
    public var details: [String: String]
    public var occurredAt: String
    public var status: NotificationStatus
    public var attempts: Int
    public var nextAttemptAt: String?
    public var lastError: String?
    public var deliveredAt: String?
    public var createdAt: String
    public var updatedAt: String

    public init(
        id: String, receiver: String, event: NotificationEvent, deploymentId: String, incidentKey: String,
        action: NotificationAction, severity: NotificationSeverity, summary: String, details: [String: String],
        occurredAt: String, status: NotificationStatus, attempts: Int, nextAttemptAt: String?, lastError: String?,
        deliveredAt: String?, createdAt: String, updatedAt: String
    ) {
        self.id = id
        self.receiver = receiver
        self.event = event
        self.deploymentId = deploymentId
        self.incidentKey = incidentKey
        self.action = action
        self.severity = severity
        self.summary = summary
        self.details = details
        self.occurredAt = occurredAt
        self.status = status
        self.attempts = attempts
        self.nextAttemptAt = nextAttemptAt
        self.lastError = lastError
        self.deliveredAt = deliveredAt
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    /// A new outbox row for `receiver`, due at once.
    public init(id: String, receiver: String, draft: NotificationDraft, now: Date) {
        let now = Timestamp.format(now)
        self.init(
            id: id, receiver: receiver, event: draft.event, deploymentId: draft.deploymentId,
            incidentKey: draft.incidentKey, action: draft.action, severity: draft.severity, summary: draft.summary,
            details: draft.details, occurredAt: Timestamp.format(draft.at), status: .pending, attempts: 0,
            nextAttemptAt: now, lastError: nil, deliveredAt: nil, createdAt: now, updatedAt: now)
    }
}

/// What happens around an incident, beside the decisions: who is told, which maintenance the
/// config declares, and how long commands may go unacknowledged.
public struct IncidentSettings: Sendable, Hashable {
    public var routing = NotificationRouting()
    public var maintenance = MaintenanceSchedule()
    /// A command neither acknowledged nor settled this long after it was decided becomes `expired`.
    public var ackDeadline: TimeInterval = 5 * 60
    public init() {}
}

/// The one-line summaries, written once here so that every receiver says the same thing.
enum NotificationText {
    static func move(_ plan: FailoverPlan) -> (NotificationEvent, String, NotificationSeverity)? {
        let prefix = "\(plan.deploymentId): " + (plan.dryRun ? "[dry run] " : "")
        let move = DecisionEngine.describeMove(plan)
        switch plan.kind {
        case .failover:
            return (.failover, "\(prefix)failed over \(move) — \(plan.reason)", .critical)
        case .failback:
            return (.failback, "\(prefix)failed back \(move) — \(plan.reason)", .warning)
        case .rotationRemove:
            return (.failover, "\(prefix)took \(plan.fromHub ?? "a hub") out of rotation — \(plan.reason)", .error)
        case .rotationRestore:
            return (.failback, "\(prefix)restored \(plan.toHub ?? "a hub") to rotation — \(plan.reason)", .warning)
        case .outage:
            return (.noTarget, "\(prefix)outage, no failover target — \(plan.reason)", .critical)
        case .outageEnded:
            return nil
        }
    }
}
