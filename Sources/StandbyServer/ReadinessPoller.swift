import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import StandbyApp
import StandbyCore
import StandbyPrimitives

/// Polls Azure Resource Manager for each hub's readiness every `readiness.interval`, on the leader
/// only, and records the answers as readiness reports (actor `arm`), as the application layer's
/// pushed reports are recorded. A check is polled when the hub lists what it reads, in its
/// `resources` or its `readiness.resources`: a storage account, a container registry, a workspace
/// (endpoints), and a `readiness.scaleUp` (quota); the others are left to pushed reports.
public struct ReadinessPoller: Service, CustomStringConvertible {
    let controlPlane: ControlPlane
    let leadership: Leadership
    let topology: Topology
    let settings: ReadinessPollingSettings
    let timeSource: any TimeSource
    let ids: any IDSource
    let metrics: StandbyMetrics
    let logger: Logger

    public static let actor = "arm"

    public init(
        controlPlane: ControlPlane, leadership: Leadership, topology: Topology, settings: ReadinessPollingSettings,
        timeSource: any TimeSource, ids: any IDSource, metrics: StandbyMetrics, logger: Logger
    ) {
        self.controlPlane = controlPlane
        self.leadership = leadership
        self.topology = topology
        self.settings = settings
        self.timeSource = timeSource
        self.ids = ids
        self.metrics = metrics
        self.logger = logger
    }

    public var description: String { "ReadinessPoller" }

    public func run() async throws {
        guard settings.enabled else {
            try? await gracefulShutdown()
            return
        }
        let client = CommandDispatcher.makeClient()
        let arm = ResourceManagerClient(settings: settings, client: client, timeSource: timeSource)
        logger.info(
            "polling readiness from Azure Resource Manager",
            metadata: [
                "interval": .string("\(Int(settings.interval))s"), "credential": .string("\(settings.credential)"),
            ])
        await repeatWhileLeading(leadership, every: .milliseconds(Int(settings.interval * 1000))) {
            do {
                try await pollOnce(arm)
            } catch is CancellationError {
            } catch {
                logger.warning("readiness poll failed", metadata: ["error": .string("\(error)")])
            }
        }
        try await client.shutdown()
    }

    /// One pass over every hub; the reports it recorded.
    @discardableResult
    func pollOnce(_ arm: ResourceManagerClient) async throws -> [ReadinessReportInput] {
        var reports: [ReadinessReportInput] = []
        for deployment in topology.deployments {
            for hub in deployment.hubs {
                let verdicts = await poll(hub, arm: arm)
                let now = timeSource.now()
                for (check, verdict) in verdicts {
                    metrics.count(
                        "standby_readiness_polls_total",
                        [("check", check.rawValue), ("status", verdict.status.rawValue)])
                    reports.append(
                        ReadinessReportInput(
                            id: ids.next(), deploymentId: deployment.id, hubId: hub.id, check: check,
                            status: verdict.status,
                            detail: String(verdict.detail.prefix(ReadinessReportBatch.maximumDetail)),
                            observedAt: Timestamp.truncatedToMilliseconds(now)))
                }
            }
        }
        guard !reports.isEmpty else { return [] }
        _ = try await controlPlane.recordReadiness(reports, actor: Self.actor, now: timeSource.now())
        return reports
    }

    /// The checks of one hub that it lists resources for.
    func poll(_ hub: HubDefinition, arm: ResourceManagerClient) async -> [(ReadinessCheck, ReadinessVerdict)] {
        let targets = settings.hubs[hub.id] ?? HubReadinessTargets()
        var seen = Set<ResourceID>()
        let ids = (hub.resources + targets.resources).filter { seen.insert($0).inserted }
        let resources = ids.compactMap(ARMResource.init)
        var verdicts: [(ReadinessCheck, ReadinessVerdict)] = []

        let accounts = resources.filter { $0.kind == .storageAccount }
        if !accounts.isEmpty {
            var each: [ReadinessVerdict] = []
            for account in accounts {
                switch await arm.get(
                    account.id.original, apiVersion: "2023-05-01", query: [("$expand", "geoReplicationStats")])
                {
                case .success(let body):
                    each.append(
                        ARMReadiness.storage(
                            body, account: account.name, now: timeSource.now(), maxLag: settings.maxReplicationLag))
                case .failure(let failure): each.append(ReadinessVerdict(.unknown, "\(account.name): \(failure)"))
                }
            }
            verdicts.append((.storageReplication, .combined(each)))
        }

        let registries = resources.filter { $0.kind == .containerRegistry }
        if !registries.isEmpty {
            var each: [ReadinessVerdict] = []
            for registry in registries {
                switch await arm.list(registry.id.original + "/replications", apiVersion: "2023-07-01") {
                case .success(let items): each.append(ARMReadiness.registry(items, registry: registry.name, hub: hub))
                case .failure(let failure): each.append(ReadinessVerdict(.unknown, "\(registry.name): \(failure)"))
                }
            }
            verdicts.append((.registryReplication, .combined(each)))
        }

        let workspaces = resources.filter { $0.kind == .workspace }
        if let scaleUp = targets.scaleUp {
            // The quota is the subscription's in the hub's region: the workspace's, else any listed id's.
            let subscription =
                workspaces.first?.subscriptionPath
                ?? ids.lazy.compactMap { ARMResource.subscription(of: $0) }.first
            if let subscription {
                let path =
                    "/subscriptions/\(subscription)/providers/Microsoft.MachineLearningServices/locations/\(hub.region)/usages"
                switch await arm.list(path, apiVersion: "2024-04-01") {
                case .success(let items):
                    verdicts.append((.computeQuota, ARMReadiness.quota(items, scaleUp: scaleUp, region: hub.region)))
                case .failure(let failure):
                    verdicts.append((.computeQuota, ReadinessVerdict(.unknown, failure.description)))
                }
            } else {
                verdicts.append(
                    (.computeQuota, ReadinessVerdict(.unknown, "no ARM id of the hub names its subscription")))
            }
        }

        if !workspaces.isEmpty {
            var endpoints: [JSONValue] = []
            var failures: [String] = []
            for workspace in workspaces {
                switch await arm.list(workspace.id.original + "/onlineEndpoints", apiVersion: "2024-04-01") {
                case .success(let items): endpoints += items
                case .failure(let failure): failures.append("\(workspace.name): \(failure)")
                }
            }
            verdicts.append(
                (
                    .endpoints,
                    failures.isEmpty
                        ? ARMReadiness.endpoints(endpoints, required: targets.endpoints)
                        : ReadinessVerdict(.unknown, failures.joined(separator: "; "))
                ))
        }
        return verdicts
    }
}

/// Why an ARM call gave no answer to read.
struct ResourceManagerFailure: Error, CustomStringConvertible {
    var description: String
}

/// GETs from Azure Resource Manager with an Entra ID token: an expired or revoked token is renewed
/// once, a throttled call (429, or 503 with `Retry-After`) waits as asked when that fits in
/// `maxRetryAfter`, and list answers are followed through `nextLink` (only to the same host, so the
/// token never leaves ARM).
struct ResourceManagerClient: Sendable {
    let base: String
    let client: HTTPClient
    let tokens: AzureTokenProvider
    let timeout: TimeInterval
    let maxRetryAfter: TimeInterval
    static let maximumPages = 20
    static let maximumBodyBytes = 8 * 1024 * 1024

    init(settings: ReadinessPollingSettings, client: HTTPClient, timeSource: any TimeSource) {
        base =
            settings.resourceManager.hasSuffix("/")
            ? String(settings.resourceManager.dropLast()) : settings.resourceManager
        self.client = client
        tokens = AzureTokenProvider(
            credential: settings.credential, resourceManager: base, client: client, timeout: settings.timeout,
            timeSource: timeSource)
        timeout = settings.timeout
        maxRetryAfter = settings.maxRetryAfter
    }

    func get(_ path: String, apiVersion: String, query: [(String, String)] = []) async
        -> Result<JSONValue, ResourceManagerFailure>
    {
        await fetch(base + path + "?" + AzureTokenProvider.form([("api-version", apiVersion)] + query))
    }

    /// Every item of a list answer (`value`), across its pages.
    func list(_ path: String, apiVersion: String) async -> Result<[JSONValue], ResourceManagerFailure> {
        var url: String? = base + path + "?" + AzureTokenProvider.form([("api-version", apiVersion)])
        var items: [JSONValue] = []
        var pages = 0
        while let next = url {
            pages += 1
            guard pages <= Self.maximumPages else {
                return .failure(ResourceManagerFailure(description: "more than \(Self.maximumPages) pages"))
            }
            switch await fetch(next) {
            case .failure(let failure): return .failure(failure)
            case .success(let body):
                guard let page = body["value"]?.arrayValue else {
                    return .failure(ResourceManagerFailure(description: "ARM's answer has no value list"))
                }
                items += page
                url = nil
                if let link = body["nextLink"]?.stringValue, !link.isEmpty {
                    guard link.hasPrefix(base + "/") else {
                        return .failure(ResourceManagerFailure(description: "nextLink leaves \(base): \(link)"))
                    }
                    url = link
                }
            }
        }
        return .success(items)
    }

    private func fetch(_ url: String) async -> Result<JSONValue, ResourceManagerFailure> {
        var renewedToken = false
        var throttles = 0
        while true {
            let token: String
            do {
                token = try await tokens.token()
            } catch {
                return .failure(ResourceManagerFailure(description: "\(error)"))
            }
            var request = HTTPClientRequest(url: url)
            request.headers.add(name: "Authorization", value: "Bearer \(token)")
            request.headers.add(name: "Accept", value: "application/json")
            request.headers.add(name: "User-Agent", value: "standby-readiness")
            let status: Int
            let headers: HTTPHeaders
            let body: JSONValue?
            do {
                let response = try await client.execute(request, timeout: .milliseconds(Int64(timeout * 1000)))
                let bytes = try await response.body.collect(upTo: Self.maximumBodyBytes)
                status = Int(response.status.code)
                headers = response.headers
                body = try? JSONValue.decode(Data(bytes.readableBytesView))
            } catch {
                return .failure(ResourceManagerFailure(description: "ARM request failed: \(error)"))
            }
            switch status {
            case 200:
                guard let body, body.objectValue != nil else {
                    return .failure(ResourceManagerFailure(description: "ARM's answer is not a JSON object"))
                }
                return .success(body)
            case 401 where !renewedToken:
                // `ExpiredAuthenticationToken`, or a token revoked early: one fresh token, once.
                renewedToken = true
                await tokens.invalidate()
            case 429, 503:
                let wait = RetryAfter.seconds(headers.first(name: "Retry-After"))
                guard let wait, wait <= maxRetryAfter, throttles < 2 else {
                    let after = wait.map { ", retry after \(Int($0))s" } ?? ""
                    return .failure(
                        ResourceManagerFailure(
                            description: ARMReadiness.errorSummary(status: status, body: body) + " (throttled\(after))")
                    )
                }
                throttles += 1
                do {
                    try await Task.sleep(for: .milliseconds(Int(max(0, wait) * 1000)))
                } catch {
                    return .failure(ResourceManagerFailure(description: "stopped while throttled"))
                }
            default:
                return .failure(
                    ResourceManagerFailure(description: ARMReadiness.errorSummary(status: status, body: body)))
            }
        }
    }
}
