import Foundation
import Logging
import StandbyApp
import StandbyCore
import StandbyPostgres
import StandbyPrimitives
import StandbyStore

public enum Role: String, Sendable, Hashable, CaseIterable, Codable {
    case reader
    case reporter
    case `operator`
    case admin
}

/// A configured API token. The secret is kept as its SHA-256, whether the file held the plain
/// token or a `sha256:<hex>` hash, so that comparisons never touch the plaintext again. Even the
/// hash prints redacted: it is what an attacker would need to test guesses offline.
public struct APIToken: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var name: String
    public var secretSHA256: [UInt8]
    public var roles: Set<Role>

    public init(name: String, secretSHA256: [UInt8], roles: Set<Role>) {
        self.name = name
        self.secretSHA256 = secretSHA256
        self.roles = roles
    }

    /// `admin` may do everything; the other roles are exactly what they say.
    public func allows(_ role: Role) -> Bool { roles.contains(role) || roles.contains(.admin) }

    public var description: String {
        "APIToken(name: \(name), roles: \(roles.map(\.rawValue).sorted()), secret: <redacted>)"
    }
    public var debugDescription: String { description }
    public var customMirror: Mirror {
        Mirror(self, children: ["name": name, "roles": roles.map(\.rawValue).sorted()], displayStyle: .struct)
    }
}

public struct ServerSettings: Sendable, Hashable {
    public var host = "127.0.0.1"
    public var port = 8080
    public var maxBodyBytes = 1_048_576
    /// A connection that sends or receives nothing this long is closed (slow or stuck clients).
    public var idleTimeout: TimeInterval = 30
    /// A request body must arrive whole within this long of its head, however it trickles.
    public var bodyTimeout: TimeInterval = 10
    /// Open connections beyond this wait to be accepted; those already open keep being served.
    public var maxConnections = 2048
    /// When set, `GET /metrics` needs `Authorization: Bearer <metricsToken>`; without it the
    /// metrics are public (they hold ids and counts, never payloads or secrets).
    public var metricsToken: Secret?
    public init() {}
}

/// Azure Monitor Secure Webhook: an Entra ID bearer token (RS256) instead of `?token=`.
public struct SecureWebhookSettings: Sendable, Hashable {
    public var tenantId: String
    public var audiences: [String]
    /// Accepted `iss` values; by default the tenant's v1 and v2 issuers.
    public var issuers: [String]
    /// A JWKS file path, or an https URL (by default the tenant's Entra ID keys).
    public var jwks: String
    public var jwksRefresh: TimeInterval = 3600
    /// When set, deliveries whose alert names none of these subscriptions are refused.
    public var allowedSubscriptions: [String] = []
    public static let requiredRole = "ActionGroupsSecureWebhook"

    public init(tenantId: String, audiences: [String], issuers: [String]? = nil, jwks: String? = nil) {
        self.tenantId = tenantId
        self.audiences = audiences
        self.issuers =
            issuers ?? [
                "https://sts.windows.net/\(tenantId)/", "https://login.microsoftonline.com/\(tenantId)/v2.0",
            ]
        self.jwks = jwks ?? "https://login.microsoftonline.com/\(tenantId)/discovery/v2.0/keys"
    }
}

public struct AuthSettings: Sendable, Hashable {
    /// Accepted `?token=` values of the Azure Monitor webhook; several allow rotation.
    public var webhookTokens: [Secret] = []
    public var apiTokens: [APIToken] = []
    public var secureWebhook: SecureWebhookSettings?
    public init() {}
}

/// Push delivery of commands to each deployment's `commandWebhook`.
public struct DispatchSettings: Sendable, Hashable {
    public var maxAttempts = 8
    public var timeout: TimeInterval = 10
    public var baseBackoff: TimeInterval = 1
    public var maxBackoff: TimeInterval = 300
    public var pollInterval: TimeInterval = 0.5
    /// A command neither acknowledged nor settled this long after it was decided becomes `expired`.
    public var ackDeadline: TimeInterval = 5 * 60
    public init() {}
}

/// Where notifications to people go (`notifications.receivers[]`).
public struct NotificationReceiver: Sendable, Hashable, CustomStringConvertible {
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        /// A Slack incoming webhook: `text` plus Block Kit `blocks`.
        case slack
        /// A Microsoft Teams Workflows webhook: a message with one Adaptive Card.
        case teams
        /// PagerDuty Events API v2.
        case pagerduty
        /// Standby's own JSON, signed like command pushes.
        case webhook
    }

    public static let pagerDutyEventsURL = "https://events.pagerduty.com/v2/enqueue"

    public var name: String
    public var kind: Kind
    public var url: String
    /// PagerDuty: the integration's routing key, from the environment.
    public var routingKey: Secret?
    /// webhook: the key of `Standby-Signature`.
    public var secret: Secret?

    public init(name: String, kind: Kind, url: String, routingKey: Secret? = nil, secret: Secret? = nil) {
        self.name = name
        self.kind = kind
        self.url = url
        self.routingKey = routingKey
        self.secret = secret
    }

    /// Names the receiver without its URL, which for Slack and Teams is itself a credential.
    public var description: String { "NotificationReceiver(\(name), \(kind.rawValue))" }
}

public struct NotificationSettings: Sendable, Hashable {
    public var receivers: [NotificationReceiver] = []
    public var routing = NotificationRouting()
    public init() {}

    public func receiver(named name: String) -> NotificationReceiver? { receivers.first { $0.name == name } }
}

/// Readiness of each hub polled from Azure Resource Manager (`readiness:`). Off unless the section
/// is present; pushed readiness reports work either way.
public struct ReadinessPollingSettings: Sendable, Hashable {
    public var enabled = false
    /// How often every hub's checks are polled.
    public var interval: TimeInterval = 300
    /// The storage account's geo-replication may lag this much behind its primary and be ready.
    public var maxReplicationLag: TimeInterval = 900
    /// One ARM or Entra ID request, answer included.
    public var timeout: TimeInterval = 10
    /// The longest `Retry-After` a throttled call waits for within a pass; a longer one makes the
    /// check `unknown` until the next pass.
    public var maxRetryAfter: TimeInterval = 60
    /// Azure Resource Manager's address (a sovereign cloud's, or a local one in tests).
    public var resourceManager = "https://management.azure.com"
    public var credential = AzureCredential.managedIdentity(
        endpoint: AzureCredential.instanceMetadataEndpoint, header: nil, clientId: nil)
    /// Per hub id: what the quota and endpoint checks need besides the hub's ARM ids.
    public var hubs: [String: HubReadinessTargets] = [:]
    public init() {}
}

/// The operator console at `/console` (`console:`).
public struct ConsoleSettings: Sendable, Hashable {
    /// A signed-in browser that makes no request this long is signed out.
    public var sessionIdleTimeout: TimeInterval = 1800
    /// One live-update stream lasts this long; the browser then reconnects on its own (so that a
    /// stream never outlives a deploy or holds a connection forever).
    public var streamLifetime: TimeInterval = 300
    /// How often a live stream looks for a change.
    public var streamInterval: TimeInterval = 1
    public init() {}
}

/// Who this instance is among those sharing a store (`cluster:`).
public struct ClusterSettings: Sendable, Hashable {
    /// Unique among the instances; by default `<host name>:<server.port>`.
    public var instance: String?
    /// Where the instance runs (`westeurope`), shown beside it.
    public var region: String?
    /// Where operators and peers reach it.
    public var url: String?
    /// How long the leader lease lasts unless renewed (PostgreSQL): a new leader takes over within
    /// this plus one tick of a leader's loss. The heartbeat renews it every third of it.
    public var leaseTTL: TimeInterval = 15
    public init() {}

    /// The instance's id: `instance`, or the host name and port.
    public func instanceId(port: Int) -> String {
        instance ?? "\(ProcessInfo.processInfo.hostName):\(port)"
    }
}

public struct AuditSettings: Sendable, Hashable {
    /// Signs the anchors that pruning leaves and the checkpoints; `chainKey` does when it is unset.
    public var signingKey: Secret?
    /// Keys the history's hash chain (HMAC-SHA256): without it, anyone who can write the database
    /// file can rewrite history and recompute every hash.
    public var chainKey: Secret?
    /// How often the serving process logs a signed checkpoint of the chain head (and shows it in
    /// `/metrics`), so that a copy outside the database can later prove nothing was cut off.
    public var checkpointInterval: TimeInterval = 3600
    public init() {}

    /// The key that signs anchors and checkpoints.
    public var anchorKey: Secret? { signingKey ?? chainKey }
}

public struct StandbyConfiguration: Sendable, Hashable {
    public var server = ServerSettings()
    public var cluster = ClusterSettings()
    public var console = ConsoleSettings()
    public var audit = AuditSettings()
    public var logging = LoggingSettings()
    public var dispatch = DispatchSettings()
    public var resubmissions = QueueSettings()
    /// The embedded SQLite database (`database.path`), used unless `postgres` is set.
    public var database = DatabaseSettings(path: "standby.sqlite")
    /// The shared PostgreSQL database (`database.url`), for several instances.
    public var postgres: PostgresSettings?
    public var auth = AuthSettings()
    public var notifications = NotificationSettings()
    public var readiness = ReadinessPollingSettings()
    /// The maintenance windows the config declares (`maintenance.windows`).
    public var maintenance = MaintenanceSchedule()
    public var topology = Topology(deployments: [])
    /// The YAML this configuration was read from, `${VAR}` references unresolved (a replay's
    /// candidate is laid over it). Kept in memory only, never served.
    public var sourceText = ""
    /// The environment `${VAR}` references were resolved from, for the same candidate overlay.
    public var sourceEnvironment: [String: String] = [:]
    public init() {}
}

extension StandbyConfiguration {
    /// What the control plane needs to know about people and plans around an incident.
    public var incident: IncidentSettings {
        var settings = IncidentSettings()
        settings.routing = notifications.routing
        settings.maintenance = maintenance
        settings.ackDeadline = dispatch.ackDeadline
        return settings
    }
}
