import ConfigReading
import Crypto
import Foundation
import Logging
import StandbyApp
import StandbyCore
import StandbyPostgres
import StandbyPrimitives
import StandbyStore

/// Reads the YAML configuration of DESIGN §7 (the generic reading is `ConfigFile`'s; the schema
/// below walks the document), collecting every problem with its key path.
public enum ConfigLoader {
    public static func load(file: String, environment: [String: String] = ProcessInfo.processInfo.environment)
        throws -> StandbyConfiguration
    {
        let text: String
        do {
            text = try String(contentsOfFile: file, encoding: .utf8)
        } catch {
            throw ConfigError(
                file: file,
                problems: [ConfigProblem(path: "", reason: "cannot read the file (\(error.localizedDescription))")])
        }
        return try parse(text, file: file, environment: environment)
    }

    public static func parse(_ text: String, file: String = "config", environment: [String: String]) throws
        -> StandbyConfiguration
    {
        var configuration = try ConfigFile.parse(text, file: file, environment: environment) { reader, root in
            reader.read(root)
        }
        configuration.sourceText = text
        configuration.sourceEnvironment = environment
        return configuration
    }

    /// `live` with a candidate's deployments or policies laid over it (`ConfigFile.overlay`):
    /// what `standby replay` and `POST /v1/replays` decide with.
    public static func candidate(over live: StandbyConfiguration, candidate: String, file: String) throws
        -> StandbyConfiguration
    {
        let merged = try ConfigFile.overlay(base: live.sourceText, candidate: candidate, candidateFile: file)
        return try parse(merged, file: file, environment: live.sourceEnvironment)
    }

    public static func parseDuration(_ text: String) -> TimeInterval? { ConfigFile.parseDuration(text) }
}

extension ConfigReader {
    /// `logging: {format, level}`, the same for the server and the probe.
    public func readLogging(_ root: ConfigNode) -> LoggingSettings {
        var settings = LoggingSettings()
        if let logging = mapping(root, "logging", allowed: ["format", "level"]) {
            settings.format = choice(logging, "format", default: settings.format) ?? settings.format
            settings.level = choice(logging, "level", default: settings.level) ?? settings.level
        }
        return settings
    }

    // MARK: The document

    func read(_ root: ConfigNode) -> StandbyConfiguration {
        var configuration = StandbyConfiguration()
        guard root.isMapping else {
            problem("", "the top level must be a mapping")
            return configuration
        }
        checkKeys(
            root,
            allowed: [
                "server", "cluster", "console", "database", "auth", "deployments", "logging", "dispatch",
                "resubmissions", "audit", "notifications", "maintenance", "readiness",
            ])
        if let console = mapping(root, "console", allowed: ["sessionIdleTimeout", "streamLifetime", "streamInterval"]) {
            configuration.console.sessionIdleTimeout = duration(
                console, "sessionIdleTimeout", default: configuration.console.sessionIdleTimeout, range: 60...86_400)
            configuration.console.streamLifetime = duration(
                console, "streamLifetime", default: configuration.console.streamLifetime, range: 1...3600)
            configuration.console.streamInterval = duration(
                console, "streamInterval", default: configuration.console.streamInterval, range: 0.1...10)
        }
        if let cluster = mapping(root, "cluster", allowed: ["instance", "region", "url", "leaseTTL"]) {
            configuration.cluster.leaseTTL = duration(
                cluster, "leaseTTL", default: configuration.cluster.leaseTTL, range: 1...300)
            configuration.cluster.instance = string(cluster, "instance")
            if let instance = configuration.cluster.instance, instance.isEmpty || instance.count > 200 {
                problem("cluster.instance", "must be a non-empty name of at most 200 characters")
            }
            configuration.cluster.region = string(cluster, "region")
            configuration.cluster.url = string(cluster, "url")
            if let url = configuration.cluster.url, let node = cluster.child("url") {
                // The instance's own address: plain HTTP is its operator's choice (a private network).
                checkURL(url, at: node.path, allowPlainHTTP: true)
            }
        }
        if let audit = mapping(root, "audit", allowed: ["signingKey", "chainKey", "checkpointInterval"]) {
            configuration.audit.signingKey = secret(audit, "signingKey", minimumBytes: Self.minimumKeyBytes)
            configuration.audit.chainKey = secret(audit, "chainKey", minimumBytes: Self.minimumKeyBytes)
            configuration.audit.checkpointInterval = duration(
                audit, "checkpointInterval", default: configuration.audit.checkpointInterval, range: 1...86_400)
        }
        configuration.logging = readLogging(root)
        if let dispatch = mapping(
            root, "dispatch",
            allowed: ["maxAttempts", "timeout", "baseBackoff", "maxBackoff", "pollInterval", "ackDeadline"])
        {
            configuration.dispatch.ackDeadline = duration(
                dispatch, "ackDeadline", default: configuration.dispatch.ackDeadline, range: 1...604_800)
            configuration.dispatch.maxAttempts = int(
                dispatch, "maxAttempts", default: configuration.dispatch.maxAttempts, range: 1...100)
            configuration.dispatch.timeout = duration(
                dispatch, "timeout", default: configuration.dispatch.timeout, range: 0.1...300)
            configuration.dispatch.baseBackoff = duration(
                dispatch, "baseBackoff", default: configuration.dispatch.baseBackoff, range: 0.01...3600)
            configuration.dispatch.maxBackoff = duration(
                dispatch, "maxBackoff", default: configuration.dispatch.maxBackoff, range: 0.01...86_400)
            configuration.dispatch.pollInterval = duration(
                dispatch, "pollInterval", default: configuration.dispatch.pollInterval, range: 0.01...60)
        }
        if let queue = mapping(root, "resubmissions", allowed: ["maxAttempts", "baseBackoff", "maxBackoff"]) {
            configuration.resubmissions.maxAttempts = int(
                queue, "maxAttempts", default: configuration.resubmissions.maxAttempts, range: 1...100)
            configuration.resubmissions.baseBackoff = duration(
                queue, "baseBackoff", default: configuration.resubmissions.baseBackoff, range: 0.01...3600)
            configuration.resubmissions.maxBackoff = duration(
                queue, "maxBackoff", default: configuration.resubmissions.maxBackoff, range: 0.01...86_400)
        }
        if let server = mapping(
            root, "server",
            allowed: ["host", "port", "maxBodyBytes", "idleTimeout", "bodyTimeout", "maxConnections", "metricsToken"])
        {
            configuration.server.idleTimeout = duration(
                server, "idleTimeout", default: configuration.server.idleTimeout, range: 0.1...86_400)
            configuration.server.bodyTimeout = duration(
                server, "bodyTimeout", default: configuration.server.bodyTimeout, range: 0.1...600)
            configuration.server.maxConnections = int(
                server, "maxConnections", default: configuration.server.maxConnections, range: 1...1_000_000)
            configuration.server.metricsToken = secret(server, "metricsToken", minimumBytes: Self.minimumTokenBytes)
            configuration.server.host = string(server, "host") ?? configuration.server.host
            configuration.server.port = int(server, "port", default: configuration.server.port, range: 0...65535)
            configuration.server.maxBodyBytes = int(
                server, "maxBodyBytes", default: configuration.server.maxBodyBytes, range: 1024...(256 * 1_048_576))
        }
        if let database = mapping(root, "database", allowed: ["path", "url", "synchronous", "busyTimeout"]) {
            let defaults = configuration.database
            let path = string(database, "path") ?? defaults.path
            if path.isEmpty { problem("database.path", "must not be empty") }
            if let url = string(database, "url"), !url.isEmpty {
                if database.child("path") != nil {
                    problem("database", "set either path (SQLite) or url (PostgreSQL), not both")
                }
                do {
                    configuration.postgres = try PostgresSettings.parse(url: url)
                } catch {
                    problem("database.url", error.description)
                }
            }
            configuration.database = DatabaseSettings(
                path: path,
                synchronous: choice(database, "synchronous", default: defaults.synchronous) ?? defaults.synchronous,
                busyTimeout: duration(database, "busyTimeout", default: defaults.busyTimeout, range: 0...300))
        }
        if let auth = mapping(root, "auth", allowed: ["webhookTokens", "apiTokens", "secureWebhook"]) {
            if let secure = mapping(
                auth, "secureWebhook",
                allowed: ["tenantId", "audience", "issuer", "jwks", "jwksRefresh", "allowedSubscriptions"])
            {
                let tenant = string(secure, "tenantId", required: true) ?? ""
                if !tenant.isEmpty, UUID(uuidString: tenant) == nil {
                    problem("\(secure.path).tenantId", "expected the tenant's GUID (directory ID), found \"\(tenant)\"")
                }
                let audiences = stringOrList(secure, "audience")
                if audiences.isEmpty {
                    problem("\(secure.path).audience", "is required (the application ID URI or client ID)")
                }
                let issuers = stringOrList(secure, "issuer")
                var settings = SecureWebhookSettings(
                    tenantId: tenant, audiences: audiences, issuers: issuers.isEmpty ? nil : issuers,
                    jwks: string(secure, "jwks"))
                if let jwks = secure.child("jwks"), settings.jwks.contains("://") {
                    checkURL(settings.jwks, at: jwks.path)
                }
                settings.jwksRefresh = duration(
                    secure, "jwksRefresh", default: settings.jwksRefresh, range: 1...86_400)
                settings.allowedSubscriptions = strings(secure, "allowedSubscriptions").map { $0.lowercased() }
                configuration.auth.secureWebhook = settings
            }
            // An empty entry (an optional variable left unset) means "no token", never "any token".
            if let tokens = auth.child("webhookTokens") {
                if let items = tokens.items {
                    configuration.auth.webhookTokens = items.compactMap {
                        secret($0, minimumBytes: Self.minimumTokenBytes)
                    }
                } else {
                    problem(tokens.path, "expected a list")
                }
            }
            configuration.auth.apiTokens = readAPITokens(auth)
        }
        configuration.topology = Topology(deployments: readDeployments(root))
        configuration.notifications = readNotifications(root)
        configuration.maintenance = readMaintenance(root, topology: configuration.topology)
        configuration.readiness = readReadiness(root)
        return configuration
    }

    private func readAPITokens(_ auth: ConfigNode) -> [APIToken] {
        guard let list = auth.child("apiTokens") else { return [] }
        guard let items = list.items else {
            problem(list.path, "expected a list")
            return []
        }
        var names = Set<String>()
        return items.compactMap { item in
            guard item.isMapping else {
                problem(item.path, "expected a mapping with name, token and roles")
                return nil
            }
            checkKeys(item, allowed: ["name", "token", "roles"])
            guard let name = string(item, "name", required: true), let token = string(item, "token", required: true)
            else { return nil }
            if !names.insert(name).inserted { problem("\(item.path).name", "duplicate token name \"\(name)\"") }
            var roles = Set<Role>()
            for (index, roleName) in strings(item, "roles").enumerated() {
                if let role = Role(rawValue: roleName) {
                    roles.insert(role)
                } else {
                    problem(
                        "\(item.path).roles[\(index)]",
                        "unknown role \"\(roleName)\" (expected reader, reporter, operator or admin)")
                }
            }
            if roles.isEmpty { problem("\(item.path).roles", "at least one role is required") }
            // An unset optional variable leaves the token disabled rather than open.
            if token.isEmpty { return nil }
            if token.utf8.count < Self.minimumTokenBytes, !token.hasPrefix("sha256:") {
                problem(
                    "\(item.path).token",
                    "a token must be at least \(Self.minimumTokenBytes) bytes long, found \(token.utf8.count)")
                return nil
            }
            if token.hasPrefix("sha256:") {
                let hex = token.dropFirst("sha256:".count)
                guard let digest = Self.decodeHex(hex), digest.count == 32 else {
                    problem("\(item.path).token", "sha256: must be followed by 64 hex digits")
                    return nil
                }
                return APIToken(name: name, secretSHA256: digest, roles: roles)
            }
            return APIToken(name: name, secretSHA256: Array(SHA256.hash(data: Data(token.utf8))), roles: roles)
        }
    }

    static func decodeHex(_ text: Substring) -> [UInt8]? {
        guard text.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        var index = text.startIndex
        while index < text.endIndex {
            let next = text.index(index, offsetBy: 2)
            guard let byte = UInt8(text[index..<next], radix: 16) else { return nil }
            bytes.append(byte)
            index = next
        }
        return bytes
    }

    private func readDeployments(_ root: ConfigNode) -> [DeploymentDefinition] {
        guard let list = root.child("deployments") else { return [] }
        guard let items = list.items else {
            problem(list.path, "expected a list of deployments")
            return []
        }
        var deploymentIds = Set<String>()
        var hubIds = Set<String>()
        return items.compactMap { item in
            guard item.isMapping else {
                problem(item.path, "expected a mapping")
                return nil
            }
            checkKeys(item, allowed: ["id", "pattern", "hubs", "policy", "commandWebhook"])
            let id = string(item, "id", required: true) ?? ""
            if !id.isEmpty, !deploymentIds.insert(id).inserted {
                problem("\(item.path).id", "duplicate deployment id \"\(id)\"")
            }
            let pattern = choice(item, "pattern", default: DeploymentPattern?.none)
            let hubs = readHubs(item, hubIds: &hubIds)
            if let pattern { checkShape(pattern, hubs: hubs, at: item.path) }
            let policy = readPolicy(item)
            var webhook: CommandWebhook?
            if let node = mapping(item, "commandWebhook", allowed: ["url", "secret", "allowPlainHTTP"]) {
                let url = string(node, "url", required: true) ?? ""
                let secret = secret(node, "secret", minimumBytes: Self.minimumKeyBytes, required: true)
                let allowPlainHTTP = bool(node, "allowPlainHTTP", default: false)
                if !url.isEmpty { checkURL(url, at: "\(node.path).url", allowPlainHTTP: allowPlainHTTP) }
                if let secret { webhook = CommandWebhook(url: url, secret: secret, allowPlainHTTP: allowPlainHTTP) }
            }
            guard let pattern, !id.isEmpty else { return nil }
            return DeploymentDefinition(id: id, pattern: pattern, hubs: hubs, policy: policy, commandWebhook: webhook)
        }
    }

    private func readHubs(_ deployment: ConfigNode, hubIds: inout Set<String>) -> [HubDefinition] {
        guard let list = deployment.child("hubs"), let items = list.items, !items.isEmpty else {
            problem("\(deployment.path).hubs", "at least one hub is required")
            return []
        }
        return items.compactMap { item in
            guard item.isMapping else {
                problem(item.path, "expected a mapping")
                return nil
            }
            checkKeys(item, allowed: ["id", "region", "regionName", "role", "endpoint", "resources", "readiness"])
            let id = string(item, "id", required: true) ?? ""
            if !id.isEmpty, !hubIds.insert(id).inserted {
                problem("\(item.path).id", "duplicate hub id \"\(id)\" (hub ids are unique across deployments)")
            }
            let region = string(item, "region", required: true) ?? ""
            let regionName = string(item, "regionName", default: region) ?? region
            let role = choice(item, "role", default: HubRole?.none)
            let endpoint = string(item, "endpoint", default: "") ?? ""
            var resources: [ResourceID] = []
            if let list = item.child("resources") {
                for node in list.items ?? [] {
                    guard let text = text(node) else { continue }
                    if !text.lowercased().hasPrefix("/subscriptions/") {
                        problem(
                            node.path, "expected an ARM resource ID starting with /subscriptions/, found \"\(text)\"")
                    }
                    resources.append(ResourceID(text))
                }
                if list.items == nil { problem(list.path, "expected a list of ARM resource IDs") }
            }
            guard !id.isEmpty, !region.isEmpty, let role else { return nil }
            return HubDefinition(
                id: id, region: region, regionName: regionName, role: role, endpoint: endpoint, resources: resources)
        }
    }

    private func checkShape(_ pattern: DeploymentPattern, hubs: [HubDefinition], at path: String) {
        let primaries = hubs.filter { $0.role == .primary }.count
        switch pattern {
        case .singleRegion:
            if hubs.count != 1 { problem("\(path).hubs", "single-region takes exactly one hub, found \(hubs.count)") }
        case .activePassive:
            if primaries != 1 {
                problem("\(path).hubs", "active-passive takes exactly one primary hub, found \(primaries)")
            }
            if hubs.count < 2 { problem("\(path).hubs", "active-passive needs a secondary hub") }
        case .activeActive:
            if hubs.count < 2 { problem("\(path).hubs", "active-active needs at least two hubs, found \(hubs.count)") }
        }
    }

    private func readPolicy(_ deployment: ConfigNode) -> Policy {
        var policy = Policy()
        guard
            let node = mapping(
                deployment, "policy",
                allowed: [
                    "failureThreshold", "window", "recoveryThreshold", "staleAfter", "quorum", "cooldown",
                    "maxFailoversPerHour", "dryRun", "failback", "alerts", "requireReadyTarget",
                    "allowUnknownReadiness", "readinessStaleAfter",
                ])
        else { return policy }
        policy.failureThreshold = int(node, "failureThreshold", default: policy.failureThreshold, range: 1...1000)
        policy.window = duration(node, "window", default: policy.window, range: 1...86_400)
        policy.recoveryThreshold = int(node, "recoveryThreshold", default: policy.recoveryThreshold, range: 1...1000)
        policy.staleAfter = duration(node, "staleAfter", default: policy.staleAfter, range: 1...86_400)
        policy.quorum = int(node, "quorum", default: policy.quorum, range: 1...100)
        policy.cooldown = duration(node, "cooldown", default: policy.cooldown, range: 0...(7 * 86_400))
        policy.maxFailoversPerHour = int(
            node, "maxFailoversPerHour", default: policy.maxFailoversPerHour, range: 0...1000)
        policy.dryRun = bool(node, "dryRun", default: policy.dryRun)
        policy.requireReadyTarget = bool(node, "requireReadyTarget", default: policy.requireReadyTarget)
        policy.allowUnknownReadiness = bool(node, "allowUnknownReadiness", default: policy.allowUnknownReadiness)
        policy.readinessStaleAfter = duration(
            node, "readinessStaleAfter", default: policy.readinessStaleAfter, range: 1...(7 * 86_400))
        if let failback = mapping(node, "failback", allowed: ["mode", "stableFor"]) {
            policy.failback.mode = choice(failback, "mode", default: policy.failback.mode) ?? policy.failback.mode
            policy.failback.stableFor = duration(
                failback, "stableFor", default: policy.failback.stableFor, range: 0...(7 * 86_400))
        }
        if let alerts = mapping(node, "alerts", allowed: ["serviceHealthServices", "failoverRules"]) {
            policy.alerts.serviceHealthServices = strings(alerts, "serviceHealthServices")
            policy.alerts.failoverRules = strings(alerts, "failoverRules")
        }
        return policy
    }
}
