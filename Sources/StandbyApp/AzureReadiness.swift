import Foundation
import StandbyCore
import StandbyPrimitives

/// What a hub needs besides its ARM ids for the readiness checks Standby polls from Azure Resource
/// Manager (`hubs[].readiness` in the config).
public struct HubReadinessTargets: Sendable, Hashable {
    /// ARM ids read for readiness only, beside the hub's `resources`: what the hub depends on but
    /// whose alerts concern another hub (the primary's geo-replicated registry or storage account).
    public var resources: [ResourceID] = []
    /// The compute a failover asks of the hub's region; without it, `compute_quota` is not polled.
    public var scaleUp: ComputeScaleUp?
    /// The online endpoints that must be serving. Empty: at least one endpoint of the hub's
    /// workspaces must be.
    public var endpoints: [String] = []

    public init(resources: [ResourceID] = [], scaleUp: ComputeScaleUp? = nil, endpoints: [String] = []) {
        self.resources = resources
        self.scaleUp = scaleUp
        self.endpoints = endpoints
    }
}

/// The vCPUs of one VM family a scale-up needs, as Azure Machine Learning's quota names the family
/// (`Standard NC Family Cluster Dedicated vCPUs`, or its id `Standard_NC_Family_Cluster_Dedicated_vCPUs`).
public struct ComputeScaleUp: Sendable, Hashable {
    public var vmFamily: String
    public var vCPUs: Int

    public init(vmFamily: String, vCPUs: Int) {
        self.vmFamily = vmFamily
        self.vCPUs = vCPUs
    }
}

/// An ARM resource id read as the readiness checks need it.
public struct ARMResource: Sendable, Hashable {
    public enum Kind: Sendable, Hashable {
        case storageAccount
        case containerRegistry
        case workspace
    }

    public var id: ResourceID
    public var kind: Kind
    public var subscription: String

    /// `/subscriptions/{s}/resourceGroups/{g}/providers/{namespace}/{type}/{name}` of the three kinds
    /// readiness reads; child resources and other types are nil.
    public init?(_ id: ResourceID) {
        let segments = id.normalized.split(separator: "/", omittingEmptySubsequences: false)
        guard segments.count == 9, segments[0].isEmpty, segments[1] == "subscriptions", segments[3] == "resourcegroups",
            segments[5] == "providers", !segments[8].isEmpty
        else { return nil }
        switch (segments[6], segments[7]) {
        case ("microsoft.storage", "storageaccounts"): kind = .storageAccount
        case ("microsoft.containerregistry", "registries"): kind = .containerRegistry
        case ("microsoft.machinelearningservices", "workspaces"): kind = .workspace
        default: return nil
        }
        self.id = id
        subscription = String(segments[2])
    }

    /// The last segment as the config spells it.
    public var name: String { id.original.split(separator: "/").last.map(String.init) ?? id.original }

    /// The subscription as the config spells it (ARM paths keep the case they are given).
    public var subscriptionPath: String { Self.subscription(of: id) ?? subscription }

    /// The subscription of any ARM id (`/subscriptions/{s}/...`), as it is spelled there.
    public static func subscription(of id: ResourceID) -> String? {
        let segments = id.original.split(separator: "/")
        guard segments.count > 1, segments[0].lowercased() == "subscriptions" else { return nil }
        return String(segments[1])
    }
}

/// One check's answer from what Azure Resource Manager returned.
public struct ReadinessVerdict: Sendable, Hashable {
    public var status: ReadinessStatus
    public var detail: String

    public init(_ status: ReadinessStatus, _ detail: String) {
        self.status = status
        self.detail = detail
    }

    /// The answer for several resources of one check: the worst status, every detail.
    public static func combined(_ verdicts: [ReadinessVerdict]) -> ReadinessVerdict {
        let status: ReadinessStatus =
            verdicts.contains { $0.status == .notReady }
            ? .notReady : verdicts.contains { $0.status == .unknown } || verdicts.isEmpty ? .unknown : .ready
        return ReadinessVerdict(status, verdicts.map(\.detail).joined(separator: "; "))
    }
}

/// Reads the bodies Azure Resource Manager documents for each readiness check. Pure: the poller
/// fetches, these decide. Anything missing or malformed is `unknown`, never `ready`.
public enum ARMReadiness {
    /// `GET {storageAccount}?$expand=geoReplicationStats` (Storage Accounts - Get Properties):
    /// geo-redundant SKU, secondary `Live` and available, `lastSyncTime` within `maxLag`.
    public static func storage(_ body: JSONValue, account: String, now: Date, maxLag: TimeInterval)
        -> ReadinessVerdict
    {
        guard let sku = body["sku"]?["name"]?.stringValue else {
            return ReadinessVerdict(.unknown, "\(account): the answer names no sku")
        }
        let redundancy = sku.uppercased()
        guard redundancy.hasSuffix("GRS") || redundancy.hasSuffix("GZRS") else {
            return ReadinessVerdict(.notReady, "\(account): sku \(sku) is not geo-redundant")
        }
        let properties = body["properties"]
        if let secondary = properties?["statusOfSecondary"]?.stringValue, secondary.lowercased() != "available" {
            return ReadinessVerdict(.notReady, "\(account): secondary region is \(secondary)")
        }
        guard let stats = properties?["geoReplicationStats"], stats.objectValue != nil else {
            return ReadinessVerdict(.unknown, "\(account): the answer has no geoReplicationStats")
        }
        guard let status = stats["status"]?.stringValue else {
            return ReadinessVerdict(.unknown, "\(account): geoReplicationStats has no status")
        }
        guard status.lowercased() == "live" else {
            return ReadinessVerdict(.notReady, "\(account): geo-replication is \(status)")
        }
        guard let lastSync = stats["lastSyncTime"]?.dateValue else {
            return ReadinessVerdict(.unknown, "\(account): geoReplicationStats has no readable lastSyncTime")
        }
        let lag = max(0, now.timeIntervalSince(lastSync))
        guard lag <= maxLag else {
            return ReadinessVerdict(
                .notReady,
                "\(account): last sync \(describe(lag)) ago, more than the allowed \(describe(maxLag))")
        }
        return ReadinessVerdict(.ready, "\(account): \(sku), \(status), last sync \(describe(lag)) ago")
    }

    /// `GET {registry}/replications` (Replications - List): a replication in the hub's region,
    /// provisioned and ready.
    public static func registry(_ items: [JSONValue], registry: String, hub: HubDefinition) -> ReadinessVerdict {
        let locations = items.compactMap { $0["location"]?.stringValue }
        guard
            let replication = items.first(where: { item in
                (item["location"]?.stringValue).map { hub.isInRegion(named: $0) } ?? false
            })
        else {
            let elsewhere = locations.isEmpty ? "none" : locations.joined(separator: ", ")
            return ReadinessVerdict(
                .notReady, "\(registry): no replication in \(hub.region) (replications: \(elsewhere))")
        }
        let properties = replication["properties"]
        guard let provisioning = properties?["provisioningState"]?.stringValue else {
            return ReadinessVerdict(.unknown, "\(registry): the \(hub.region) replication has no provisioningState")
        }
        guard provisioning.lowercased() == "succeeded" else {
            return ReadinessVerdict(.notReady, "\(registry): the \(hub.region) replication is \(provisioning)")
        }
        if let display = properties?["status"]?["displayStatus"]?.stringValue, display.lowercased() != "ready" {
            let message = properties?["status"]?["message"]?.stringValue.map { ": \($0)" } ?? ""
            return ReadinessVerdict(.notReady, "\(registry): the \(hub.region) replication is \(display)\(message)")
        }
        return ReadinessVerdict(.ready, "\(registry): replicated to \(hub.region)")
    }

    /// `GET /subscriptions/{s}/providers/Microsoft.MachineLearningServices/locations/{region}/usages`
    /// (Usages - List): the family's regional quota, and the regional dedicated total when listed,
    /// each with room for the scale-up. A limit of -1 is unlimited.
    public static func quota(_ items: [JSONValue], scaleUp: ComputeScaleUp, region: String) -> ReadinessVerdict {
        let family = fold(scaleUp.vmFamily)
        func isRegional(_ item: JSONValue, _ kind: String) -> Bool {
            item["type"]?.stringValue?.lowercased().hasSuffix("/\(kind)/usages") ?? false
        }
        func headroom(_ item: JSONValue) -> (used: Int, limit: Int)? {
            guard let used = item["currentValue"]?.doubleValue, let limit = item["limit"]?.doubleValue else {
                return nil
            }
            return (Int(used), Int(limit))
        }
        guard
            let usage = items.first(where: { item in
                guard isRegional(item, "vmfamily") else { return false }
                let idName = item["id"]?.stringValue?.split(separator: "/").last.map(String.init) ?? ""
                return fold(idName) == family || fold(item["name"]?["value"]?.stringValue ?? "") == family
            })
        else {
            return ReadinessVerdict(.unknown, "no quota named \(scaleUp.vmFamily) in \(region)")
        }
        let label = usage["name"]?["value"]?.stringValue ?? scaleUp.vmFamily
        guard let family = headroom(usage) else {
            return ReadinessVerdict(.unknown, "\(label) in \(region): the answer has no currentValue or limit")
        }
        var limits = [(label, family)]
        if let total = items.first(where: { isRegional($0, "dedicatedcores") }), let numbers = headroom(total) {
            limits.append((total["name"]?["value"]?.stringValue ?? "regional dedicated vCPUs", numbers))
        }
        for (name, numbers) in limits where numbers.limit >= 0 && numbers.limit - numbers.used < scaleUp.vCPUs {
            return ReadinessVerdict(
                .notReady,
                "\(name) in \(region): \(max(0, numbers.limit - numbers.used)) of \(numbers.limit) free, "
                    + "the scale-up needs \(scaleUp.vCPUs)")
        }
        let free = family.limit < 0 ? "unlimited" : "\(family.limit - family.used) of \(family.limit) free"
        return ReadinessVerdict(.ready, "\(label) in \(region): \(free), the scale-up needs \(scaleUp.vCPUs)")
    }

    /// `GET {workspace}/onlineEndpoints` (Online Endpoints - List): each required endpoint (or at
    /// least one) provisioned, with a deployment taking traffic.
    public static func endpoints(_ items: [JSONValue], required: [String]) -> ReadinessVerdict {
        func serving(_ item: JSONValue) -> String? {
            let name = item["name"]?.stringValue ?? "?"
            guard let state = item["properties"]?["provisioningState"]?.stringValue else {
                return "\(name) has no provisioningState"
            }
            guard state.lowercased() == "succeeded" else { return "\(name) is \(state)" }
            let traffic = item["properties"]?["traffic"]?.objectValue ?? [:]
            guard traffic.values.contains(where: { ($0.doubleValue ?? 0) > 0 }) else {
                return "\(name) has no deployment taking traffic"
            }
            return nil
        }
        if required.isEmpty {
            guard !items.isEmpty else { return ReadinessVerdict(.notReady, "no online endpoints") }
            let problems = items.compactMap(serving)
            let ready = items.count - problems.count
            guard ready > 0 else { return ReadinessVerdict(.notReady, problems.joined(separator: "; ")) }
            return ReadinessVerdict(.ready, "\(ready) of \(items.count) online endpoints serving")
        }
        var problems: [String] = []
        for name in required {
            guard let item = items.first(where: { $0["name"]?.stringValue?.lowercased() == name.lowercased() }) else {
                problems.append("\(name) is missing")
                continue
            }
            if let problem = serving(item) { problems.append(problem) }
        }
        guard problems.isEmpty else { return ReadinessVerdict(.notReady, problems.joined(separator: "; ")) }
        return ReadinessVerdict(.ready, "\(required.joined(separator: ", ")) serving")
    }

    /// ARM's error body `{"error": {"code", "message"}}`, for a detail.
    public static func errorSummary(status: Int, body: JSONValue?) -> String {
        let error = body?["error"]
        let code = error?["code"]?.stringValue
        let message = error?["message"]?.stringValue.map { String($0.prefix(300)) }
        return (["ARM answered \(status)", code, message].compactMap { $0 }).joined(separator: ": ")
    }

    /// Case, spaces and underscores aside: `Standard_NC_Family_Cluster_Dedicated_vCPUs` is
    /// `Standard NC Family Cluster Dedicated vCPUs`.
    static func fold(_ text: String) -> String {
        text.lowercased().filter { $0 != " " && $0 != "_" }
    }

    static func describe(_ seconds: TimeInterval) -> String {
        let whole = Int(seconds.rounded())
        if whole < 120 { return "\(whole)s" }
        if whole < 7200 { return "\(whole / 60)m" }
        return "\(whole / 3600)h\(whole % 3600 / 60 > 0 ? " \(whole % 3600 / 60)m" : "")"
    }
}
