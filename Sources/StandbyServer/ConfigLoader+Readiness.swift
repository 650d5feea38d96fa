import ConfigReading
import Foundation
import StandbyApp
import StandbyCore
import StandbyPrimitives

// `readiness:` of the configuration, and `readiness:` of each hub.
extension ConfigReader {
    func readReadiness(_ root: ConfigNode) -> ReadinessPollingSettings {
        var settings = ReadinessPollingSettings()
        settings.hubs = readHubReadinessTargets(root)
        guard
            let readiness = mapping(
                root, "readiness",
                allowed: ["poll", "interval", "maxReplicationLag", "timeout", "maxRetryAfter", "azure"])
        else { return settings }
        settings.enabled = bool(readiness, "poll", default: true)
        settings.interval = duration(readiness, "interval", default: settings.interval, range: 1...86_400)
        settings.maxReplicationLag = duration(
            readiness, "maxReplicationLag", default: settings.maxReplicationLag, range: 1...(7 * 86_400))
        settings.timeout = duration(readiness, "timeout", default: settings.timeout, range: 0.1...300)
        settings.maxRetryAfter = duration(
            readiness, "maxRetryAfter", default: settings.maxRetryAfter, range: 0...3600)
        let azure = mapping(
            readiness, "azure",
            allowed: [
                "credential", "resourceManager", "authorityHost", "tenantId", "clientId", "clientSecret",
                "federatedTokenFile", "managedIdentityEndpoint",
            ])
        if let node = azure?.child("resourceManager"), let url = text(node) {
            checkURL(url, at: node.path)
            settings.resourceManager = url
        }
        if settings.enabled, let credential = readAzureCredential(azure, at: "\(readiness.path).azure") {
            settings.credential = credential
        }
        return settings
    }

    /// The credential `azure.credential` names, completed from the `AZURE_*` environment as Azure's
    /// SDKs read it; `auto` takes a client secret, else a federated token file, else the managed
    /// identity (`IDENTITY_ENDPOINT` and `IDENTITY_HEADER` on App Service and Container Apps, IMDS
    /// elsewhere).
    private func readAzureCredential(_ azure: ConfigNode?, at path: String) -> AzureCredential? {
        func value(_ key: String, _ variable: String) -> String? {
            if let azure, let configured = string(azure, key), !configured.isEmpty { return configured }
            return environment[variable].flatMap { $0.isEmpty ? nil : $0 }
        }
        let kind = azure.flatMap { choice($0, "credential", default: AzureCredential.Kind.auto) } ?? .auto
        let authorityHost = value("authorityHost", "AZURE_AUTHORITY_HOST") ?? AzureCredential.publicAuthorityHost
        if let node = azure?.child("authorityHost") { checkURL(authorityHost, at: node.path) }
        let tenantId = value("tenantId", "AZURE_TENANT_ID")
        let clientId = value("clientId", "AZURE_CLIENT_ID")
        // The secret only from the environment (`${VAR}` in the file, or AZURE_CLIENT_SECRET).
        var clientSecret: Secret?
        if let node = azure?.child("clientSecret") {
            clientSecret = secret(node, minimumBytes: 1)
        } else if let variable = environment["AZURE_CLIENT_SECRET"], !variable.isEmpty {
            clientSecret = Secret(variable)
        }
        let tokenFile = value("federatedTokenFile", "AZURE_FEDERATED_TOKEN_FILE")
        let resolved: AzureCredential.Kind
        switch kind {
        case .auto:
            resolved =
                clientSecret != nil && tenantId != nil && clientId != nil
                ? .clientSecret
                : tokenFile != nil && tenantId != nil && clientId != nil ? .workloadIdentity : .managedIdentity
        default: resolved = kind
        }
        func required(_ present: String?, _ key: String, _ variable: String) -> String? {
            if present == nil { problem("\(path).\(key)", "is required for \(resolved.rawValue) (or set \(variable))") }
            return present
        }
        switch resolved {
        case .clientSecret:
            // Every missing piece is named, not only the first.
            let tenantId = required(tenantId, "tenantId", "AZURE_TENANT_ID")
            let clientId = required(clientId, "clientId", "AZURE_CLIENT_ID")
            if clientSecret == nil {
                problem("\(path).clientSecret", "is required for clientSecret (as ${VAR}, or set AZURE_CLIENT_SECRET)")
            }
            guard let tenantId, let clientId, let clientSecret else { return nil }
            return .clientSecret(
                authorityHost: authorityHost, tenantId: tenantId, clientId: clientId, secret: clientSecret)
        case .workloadIdentity:
            let tenantId = required(tenantId, "tenantId", "AZURE_TENANT_ID")
            let clientId = required(clientId, "clientId", "AZURE_CLIENT_ID")
            let tokenFile = required(tokenFile, "federatedTokenFile", "AZURE_FEDERATED_TOKEN_FILE")
            guard let tenantId, let clientId, let tokenFile else { return nil }
            return .workloadIdentity(
                authorityHost: authorityHost, tenantId: tenantId, clientId: clientId, tokenFile: tokenFile)
        case .managedIdentity, .auto:
            var endpoint = AzureCredential.instanceMetadataEndpoint
            var header: Secret?
            if let configured = azure.flatMap({ string($0, "managedIdentityEndpoint") }) {
                endpoint = configured
            } else if let appService = environment["IDENTITY_ENDPOINT"], !appService.isEmpty,
                let identityHeader = environment["IDENTITY_HEADER"], !identityHeader.isEmpty
            {
                endpoint = appService
                header = Secret(identityHeader)
            }
            if let node = azure?.child("managedIdentityEndpoint") {
                // IMDS and the App Service endpoint are plain HTTP on link-local or loopback
                // addresses by design.
                checkURL(endpoint, at: node.path, allowPlainHTTP: true)
            }
            return .managedIdentity(endpoint: endpoint, header: header, clientId: clientId)
        }
    }

    /// `deployments[].hubs[].readiness`: `resources: [ARM id]`, `scaleUp: {vmFamily, vCPUs}` and
    /// `endpoints: [name]`.
    private func readHubReadinessTargets(_ root: ConfigNode) -> [String: HubReadinessTargets] {
        var targets: [String: HubReadinessTargets] = [:]
        for deployment in root.child("deployments")?.items ?? [] {
            for hub in deployment.child("hubs")?.items ?? [] where hub.isMapping {
                guard let node = mapping(hub, "readiness", allowed: ["resources", "scaleUp", "endpoints"]),
                    let id = hub.child("id").flatMap(text)
                else { continue }
                var hubTargets = HubReadinessTargets()
                for (index, text) in strings(node, "resources").enumerated() {
                    if !text.lowercased().hasPrefix("/subscriptions/") {
                        problem(
                            "\(node.path).resources[\(index)]",
                            "expected an ARM resource ID starting with /subscriptions/, found \"\(text)\"")
                    }
                    hubTargets.resources.append(ResourceID(text))
                }
                if let scaleUp = mapping(node, "scaleUp", allowed: ["vmFamily", "vCPUs"]) {
                    let family = string(scaleUp, "vmFamily", required: true) ?? ""
                    let vCPUs = int(scaleUp, "vCPUs", default: 0, range: 1...1_000_000)
                    if scaleUp.child("vCPUs") == nil { problem("\(scaleUp.path).vCPUs", "is required") }
                    if !family.isEmpty, vCPUs > 0 {
                        hubTargets.scaleUp = ComputeScaleUp(vmFamily: family, vCPUs: vCPUs)
                    }
                }
                hubTargets.endpoints = stringOrList(node, "endpoints")
                targets[id] = hubTargets
            }
        }
        return targets
    }
}
