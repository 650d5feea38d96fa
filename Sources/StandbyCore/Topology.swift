import Foundation
import StandbyPrimitives

public enum DeploymentPattern: String, Sendable, Codable, CaseIterable {
    case singleRegion = "single-region"
    case activePassive = "active-passive"
    case activeActive = "active-active"
}

public enum HubRole: String, Sendable, Codable, CaseIterable {
    case primary
    case secondary
}

/// An Azure Resource Manager ID. ARM treats IDs case-insensitively, and senders do vary the case
/// (`resourcegroups` vs `resourceGroups`, `MICROSOFT.COMPUTE`), so comparison uses a folded form.
public struct ResourceID: Sendable, Hashable, CustomStringConvertible {
    public let original: String
    public let normalized: String

    public init(_ text: String) {
        original = text
        // Trimmed without Foundation: this runs for every resource of every alert.
        var start = text.startIndex
        var end = text.endIndex
        while start < end, text[start].isWhitespace { start = text.index(after: start) }
        while end > start, text[text.index(before: end)].isWhitespace { end = text.index(before: end) }
        var folded = text[start..<end].lowercased()
        while folded.utf8.count > 1, folded.hasSuffix("/") { folded.removeLast() }
        normalized = folded
    }

    /// True for the same resource and for any of its child resources
    /// (a workspace's online endpoint, a storage account's blob service).
    public func contains(_ other: ResourceID) -> Bool {
        other.normalized == normalized || other.normalized.hasPrefix(normalized + "/")
    }

    public var description: String { original }

    public static func == (lhs: ResourceID, rhs: ResourceID) -> Bool { lhs.normalized == rhs.normalized }
    public func hash(into hasher: inout Hasher) { hasher.combine(normalized) }
}

public struct HubDefinition: Sendable, Hashable {
    public var id: String
    public var region: String
    public var regionName: String
    public var role: HubRole
    public var endpoint: String
    public var resources: [ResourceID]

    public init(
        id: String, region: String, regionName: String, role: HubRole, endpoint: String, resources: [ResourceID]
    ) {
        self.id = id
        self.region = region
        self.regionName = regionName
        self.role = role
        self.endpoint = endpoint
        self.resources = resources
    }

    public func owns(_ resource: ResourceID) -> Bool {
        resources.contains { $0.contains(resource) }
    }

    /// Service Health names regions by display name ("East US"); configs may use either form.
    public func isInRegion(named name: String) -> Bool {
        let wanted = Self.foldRegion(name)
        return wanted == Self.foldRegion(regionName) || wanted == Self.foldRegion(region)
    }

    static func foldRegion(_ name: String) -> String {
        name.lowercased().filter { !$0.isWhitespace && $0 != "-" }
    }
}

public enum FailbackMode: String, Sendable, Codable, CaseIterable {
    case manual
    case automatic
}

public struct FailbackPolicy: Sendable, Hashable {
    public var mode: FailbackMode = .manual
    public var stableFor: TimeInterval = 15 * 60
    public init() {}
}

public struct AlertPolicy: Sendable, Hashable {
    public var serviceHealthServices: [String] = []
    public var failoverRules: [String] = []
    public init() {}

    public func coversService(_ name: String) -> Bool {
        let wanted = name.lowercased()
        return serviceHealthServices.contains { $0.lowercased() == wanted }
    }

    public func isFailoverRule(_ rule: String) -> Bool {
        let wanted = rule.lowercased()
        return failoverRules.contains { $0.lowercased() == wanted }
    }
}

/// The policy of DESIGN §4; every field has the documented default.
public struct Policy: Sendable, Hashable {
    public var failureThreshold = 3
    public var window: TimeInterval = 5 * 60
    public var recoveryThreshold = 5
    public var staleAfter: TimeInterval = 2 * 60
    public var quorum = 1
    public var cooldown: TimeInterval = 10 * 60
    public var maxFailoversPerHour = 2
    public var dryRun = false
    public var failback = FailbackPolicy()
    public var alerts = AlertPolicy()
    /// Hold an automatic failover while its target is not ready (advisory when false: the
    /// failover happens and its reason names the readiness).
    public var requireReadyTarget = false
    /// With `requireReadyTarget`: a target whose readiness is unknown may still be failed over to.
    public var allowUnknownReadiness = false
    /// A readiness report older than this counts as unknown.
    public var readinessStaleAfter: TimeInterval = 30 * 60
    public init() {}
}

public struct CommandWebhook: Sendable, Hashable {
    public var url: String
    public var secret: Secret
    /// Plain `http` is refused for push URLs unless the receiver is marked so (a receiver on the
    /// same host or a private network, say): signed commands are otherwise readable on the wire.
    public var allowPlainHTTP: Bool
    public init(url: String, secret: Secret, allowPlainHTTP: Bool = false) {
        self.url = url
        self.secret = secret
        self.allowPlainHTTP = allowPlainHTTP
    }
}

public struct DeploymentDefinition: Sendable, Hashable {
    public var id: String
    public var pattern: DeploymentPattern
    public var hubs: [HubDefinition]
    public var policy: Policy
    public var commandWebhook: CommandWebhook?

    public init(
        id: String, pattern: DeploymentPattern, hubs: [HubDefinition], policy: Policy = Policy(),
        commandWebhook: CommandWebhook? = nil
    ) {
        self.id = id
        self.pattern = pattern
        self.hubs = hubs
        self.policy = policy
        self.commandWebhook = commandWebhook
    }

    public func hub(_ id: String) -> HubDefinition? { hubs.first { $0.id == id } }
}

/// A hub, named by the deployment it belongs to.
public struct HubReference: Sendable, Hashable, Codable, Comparable {
    public var deploymentId: String
    public var hubId: String

    public init(deploymentId: String, hubId: String) {
        self.deploymentId = deploymentId
        self.hubId = hubId
    }

    public static func < (lhs: HubReference, rhs: HubReference) -> Bool {
        (lhs.deploymentId, lhs.hubId) < (rhs.deploymentId, rhs.hubId)
    }

    /// The JSON its synthesized `Encodable` writes, without JSONEncoder: every webhook's stored
    /// alert and receipt carry it.
    public func jsonValue() -> JSONValue {
        .object(["deploymentId": .string(deploymentId), "hubId": .string(hubId)])
    }
}

/// Every deployment Standby watches, and the questions asked of them as a whole.
public struct Topology: Sendable, Hashable {
    public var deployments: [DeploymentDefinition]

    public init(deployments: [DeploymentDefinition]) {
        self.deployments = deployments
    }

    public func deployment(_ id: String) -> DeploymentDefinition? { deployments.first { $0.id == id } }

    /// Hub IDs are unique across the file (enforced by config validation), so a bare hub ID,
    /// as health reports carry it, is enough.
    public func hub(_ hubId: String) -> (DeploymentDefinition, HubDefinition)? {
        for deployment in deployments {
            if let hub = deployment.hub(hubId) { return (deployment, hub) }
        }
        return nil
    }

    /// The hubs an alert is about: by ARM resource (itself or a child of a listed resource), and for
    /// Service Health by impacted region and a service the deployment's policy names.
    public func hubsConcerned(by alert: NormalizedAlert) -> [HubReference] {
        var found = Set<HubReference>()
        for deployment in deployments {
            for hub in deployment.hubs {
                if alert.targetResourceIDs.contains(where: hub.owns) {
                    found.insert(HubReference(deploymentId: deployment.id, hubId: hub.id))
                }
                if let serviceHealth = alert.serviceHealth,
                    serviceHealth.impactedServices.contains(where: { impact in
                        deployment.policy.alerts.coversService(impact.service)
                            && impact.regions.contains(where: hub.isInRegion(named:))
                    })
                {
                    found.insert(HubReference(deploymentId: deployment.id, hubId: hub.id))
                }
            }
        }
        return found.sorted()
    }
}
