import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import StandbyApp
import StandbyCore
import StandbyPrimitives
import StandbyTestSupport
import Synchronization
import Testing

@testable import StandbyServer

/// Entra ID and Azure Resource Manager on loopback: a token endpoint (client credentials), a
/// managed identity endpoint, and the ARM routes readiness reads, answering the documented bodies
/// unless a test says otherwise.
final class LocalResourceManager: Sendable {
    struct State {
        var tokensIssued = 0
        var tokenForms: [[String: String]] = []
        var managedIdentityRequests: [(query: String, metadata: String?)] = []
        var armRequests: [(path: String, query: String, authorization: String?, at: Date)] = []
        /// Answers by path suffix, overriding the documented bodies: (status, headers, body text).
        var overrides: [String: [(Int, [String: String], String)]] = [:]
        /// The first token ARM takes as expired.
        var expireFirstToken = false
        var tokenEndpointFailure: (Int, String)?
    }

    let state = Mutex(State())

    func override(_ suffix: String, _ answers: [(Int, [String: String], String)]) {
        state.withLock { $0.overrides[suffix] = answers }
    }

    static let documented: [(String, String)] = [
        ("/storageAccounts/hubwestusdata", "storage-account-geo-replication.json"),
        ("/registries/hubimages/replications", "registry-replications.json"),
        ("/locations/westus/usages", "ml-usages.json"),
        ("/workspaces/hub-westus/onlineEndpoints", "online-endpoints.json"),
    ]

    func application() -> some ApplicationProtocol {
        let router = Router()
        // One recursive route per method: Hummingbird refuses a parameter beside `**`.
        router.post("**") { request, _ -> Response in
            let segments = request.uri.path.split(separator: "/")
            guard segments.count == 4, segments[1...] == ["oauth2", "v2.0", "token"] else {
                return Self.json("{}", status: 404)
            }
            let tenant = String(segments[0])
            let body = try await request.body.collect(upTo: 1 << 16)
            let form = Dictionary(
                String(buffer: body).split(separator: "&").map { pair -> (String, String) in
                    let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
                    return (parts[0], parts.count > 1 ? (parts[1].removingPercentEncoding ?? parts[1]) : "")
                }, uniquingKeysWith: { $1 })
            let (failure, issued) = self.state.withLock { state -> ((Int, String)?, Int) in
                state.tokenForms.append(form.merging(["tenant": tenant]) { $1 })
                if state.tokenEndpointFailure == nil { state.tokensIssued += 1 }
                return (state.tokenEndpointFailure, state.tokensIssued)
            }
            if let (status, text) = failure {
                return Response(
                    status: .init(code: status), headers: [.contentType: "application/json"],
                    body: .init(byteBuffer: ByteBuffer(string: text)))
            }
            return Self.json(
                #"{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"token-\#(issued)"}"#)
        }
        router.get("**") { request, _ -> Response in
            request.uri.path == "/msi/token" ? self.managedIdentity(request) : try self.resourceManager(request)
        }
        var logger = Logger(label: "arm")
        logger.logLevel = .warning
        return Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)), logger: logger)
    }

    func managedIdentity(_ request: Request) -> Response {
        let issued = self.state.withLock { state -> Int in
            state.managedIdentityRequests.append(
                (request.uri.query ?? "", request.headers[HTTPField.Name("Metadata")!]))
            state.tokensIssued += 1
            return state.tokensIssued
        }
        // Managed identity answers its numbers as strings.
        return Self.json(
            #"{"access_token":"token-\#(issued)","expires_in":"86399","expires_on":"1900000000","resource":"https://management.azure.com/","token_type":"Bearer"}"#
        )
    }

    func resourceManager(_ request: Request) throws -> Response {
        let path = request.uri.path
        let authorization = request.headers[.authorization]
        let answer = self.state.withLock { state -> (Int, [String: String], String)? in
            state.armRequests.append((path, request.uri.query ?? "", authorization, Date()))
            if state.expireFirstToken, authorization == "Bearer token-1" {
                return (401, [:], (try? Fixtures.resourceManager("error-expired-token.json"))?.canonicalString ?? "")
            }
            guard authorization?.hasPrefix("Bearer token-") == true else { return (401, [:], "{}") }
            if let suffix = state.overrides.keys.first(where: { path.hasSuffix($0) }),
                var answers = state.overrides[suffix], !answers.isEmpty
            {
                let next = answers.removeFirst()
                state.overrides[suffix] = answers
                return next
            }
            return nil
        }
        if let (status, headers, text) = answer {
            var fields: HTTPFields = [.contentType: "application/json"]
            for (name, value) in headers { fields[HTTPField.Name(name)!] = value }
            return Response(
                status: .init(code: status), headers: fields, body: .init(byteBuffer: ByteBuffer(string: text)))
        }
        guard let (_, file) = Self.documented.first(where: { path.hasSuffix($0.0) }) else {
            return Self.json(#"{"error":{"code":"ResourceNotFound","message":"no \#(path)"}}"#, status: 404)
        }
        return Self.json(try Fixtures.resourceManager(file).canonicalString)
    }

    static func json(_ text: String, status: Int = 200) -> Response {
        Response(
            status: .init(code: status), headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}

extension JSONValue {
    fileprivate var canonicalString: String { String(decoding: canonicalData(), as: UTF8.self) }
}

@Suite("Readiness of the secondary: polled from Azure Resource Manager")
struct ARMReadinessTests {
    static let subscription = "22222222-2222-2222-2222-222222222222"
    static let group = "/subscriptions/\(subscription)/resourceGroups/ai-westus/providers"

    static let deployments = """
          - id: foundry-prod
            pattern: active-passive
            hubs:
              - { id: eastus-hub, region: eastus, regionName: East US, role: primary,
                  endpoint: https://eastus-hub.example.net, resources: [] }
              - id: westus-hub
                region: westus
                regionName: West US
                role: secondary
                endpoint: https://westus-hub.example.net
                resources:
                  - \(group)/Microsoft.MachineLearningServices/workspaces/hub-westus
                  - \(group)/Microsoft.Storage/storageAccounts/hubwestusdata
                readiness:
                  # The registry lives with the primary (its alerts concern the primary's hub).
                  resources: [\(group)/Microsoft.ContainerRegistry/registries/hubimages]
                  scaleUp: { vmFamily: Standard_NC_Family_Cluster_Dedicated_vCPUs, vCPUs: 16 }
                  endpoints: [chat]
        """

    func makeStandby(port: Int, readiness: String = "", azure: String? = nil) -> TestStandby {
        var standby = TestStandby()
        standby.deploymentsYAML = Self.deployments
        standby.extraYAML = """
            readiness:
              interval: 5m
              maxRetryAfter: 5s
              timeout: 5s
            \(readiness)
              azure:
            \(azure ?? """
                credential: clientSecret
                tenantId: 33333333-3333-3333-3333-333333333333
                clientId: standby-readiness
                clientSecret: ${STANDBY_ARM_SECRET}
                authorityHost: http://127.0.0.1:\(port)
                resourceManager: http://127.0.0.1:\(port)
            """)
            """
        standby.environment["STANDBY_ARM_SECRET"] = "arm-client-secret"
        return standby
    }

    /// One pass of the poller, as the service runs it; `arm` carries a token across passes.
    func poll(_ standby: TestStandby, _ components: StandbyComponents, using arm: ResourceManagerClient? = nil)
        async throws -> [String: ReadinessReportInput]
    {
        let configuration = try standby.configuration()
        let poller = ReadinessPoller(
            controlPlane: components.controlPlane, leadership: components.leadership,
            topology: configuration.topology, settings: configuration.readiness, timeSource: standby.time,
            ids: components.ids, metrics: components.metrics, logger: Logger(label: "test"))
        let client = CommandDispatcher.makeClient()
        defer { _ = client.shutdown() }
        let reports = try await poller.pollOnce(
            arm ?? ResourceManagerClient(settings: configuration.readiness, client: client, timeSource: standby.time))
        return Dictionary(uniqueKeysWithValues: reports.map { ($0.check.rawValue, $0) })
    }

    func view(_ client: any TestClientProtocol) async throws -> [String: JSONValue] {
        let hubs = try await client.deployment()["hubs"]?.arrayValue ?? []
        let checks = hubs.first { $0["id"]?.stringValue == "westus-hub" }?["readiness"]?.arrayValue ?? []
        return Dictionary(
            uniqueKeysWithValues: checks.compactMap { check in check["check"]?.stringValue.map { ($0, check) } })
    }

    @Test("every check reaches ready from the documented answers; the deployment view and the history show them")
    func documentedAnswersAreReady() async throws {
        let arm = LocalResourceManager()
        try await arm.application().test(.live) { armClient in
            let port = try #require(armClient.port)
            let standby = makeStandby(port: port)
            try await standby.run { client, components in
                let http = CommandDispatcher.makeClient()
                defer { _ = http.shutdown() }
                let shared = ResourceManagerClient(
                    settings: try standby.configuration().readiness, client: http, timeSource: standby.time)
                let reports = try await poll(standby, components, using: shared)
                #expect(
                    reports.mapValues(\.status.rawValue) == [
                        "storage_replication": "ready", "registry_replication": "ready", "compute_quota": "ready",
                        "endpoints": "ready",
                    ])
                #expect(
                    reports["storage_replication"]?.detail?.contains("Standard_RAGRS, Live, last sync 90s ago") == true)
                #expect(reports["compute_quota"]?.detail?.contains("36 of 48 free, the scale-up needs 16") == true)

                let view = try await view(client)
                #expect(view.values.allSatisfy { $0["status"]?.stringValue == "ready" })
                let changes = try await client.get("/v1/events?type=readiness.changed").json["items"]?.arrayValue ?? []
                #expect(changes.count == 4)
                #expect(changes.allSatisfy { $0["actor"]?.stringValue == ReadinessPoller.actor })

                // The calls: the token once, client credentials for ARM's scope, each ARM route with
                // its API version and the bearer token.
                let state = arm.state.withLock { $0 }
                #expect(state.tokenForms.count == 1)
                let form = try #require(state.tokenForms.first)
                #expect(form["grant_type"] == "client_credentials")
                #expect(form["client_id"] == "standby-readiness")
                #expect(form["client_secret"] == "arm-client-secret")
                #expect(form["scope"] == "http://127.0.0.1:\(port)/.default")
                #expect(form["tenant"] == "33333333-3333-3333-3333-333333333333")
                #expect(state.armRequests.count == 4)
                #expect(state.armRequests.allSatisfy { $0.authorization == "Bearer token-1" })
                let storage = try #require(state.armRequests.first { $0.path.hasSuffix("/hubwestusdata") })
                #expect(storage.query.contains("api-version=2023-05-01"))
                #expect(
                    storage.query.contains("%24expand=geoReplicationStats")
                        || storage.query.contains("$expand=geoReplicationStats"))
                #expect(
                    state.armRequests.contains {
                        $0.path
                            == "/subscriptions/\(Self.subscription)/providers/Microsoft.MachineLearningServices/locations/westus/usages"
                    })

                // A second pass reuses the cached token and records no change.
                standby.time.advance(by: 300)
                _ = try await poll(standby, components, using: shared)
                #expect(arm.state.withLock { $0.tokenForms.count } == 1)
                let after = try await client.get("/v1/events?type=readiness.changed").json["items"]?.arrayValue ?? []
                #expect(after.count == 4)
            }
        }
    }

    @Test("each check reaches not_ready from the answers that say so")
    func answersReachNotReady() async throws {
        let arm = LocalResourceManager()
        var lagging = try Fixtures.resourceManager("storage-account-geo-replication.json")
        if case .object(var members) = lagging, case .object(var properties)? = members["properties"],
            case .object(var stats)? = properties["geoReplicationStats"]
        {
            stats["lastSyncTime"] = .string("2026-11-28T09:30:00Z")
            properties["geoReplicationStats"] = .object(stats)
            members["properties"] = .object(properties)
            lagging = .object(members)
        }
        arm.override("/hubwestusdata", [(200, [:], lagging.canonicalString)])
        arm.override(
            "/replications",
            [
                (
                    200, [:],
                    #"{"value":[{"name":"westus","location":"West US","properties":{"provisioningState":"Updating","status":{"displayStatus":"Syncing","message":"importing"}}}]}"#
                )
            ])
        try await arm.application().test(.live) { armClient in
            let port = try #require(armClient.port)
            let standby = makeStandby(port: port)
            var deployments = Self.deployments
            deployments = deployments.replacingOccurrences(of: "vCPUs: 16", with: "vCPUs: 40")
            deployments = deployments.replacingOccurrences(of: "endpoints: [chat]", with: "endpoints: [chat, embed]")
            var configured = standby
            configured.deploymentsYAML = deployments
            let strict = configured
            try await strict.run { client, components in
                let reports = try await poll(strict, components)
                #expect(reports.values.allSatisfy { $0.status == .notReady })
                #expect(
                    reports["storage_replication"]?.detail?.contains("last sync 30m ago, more than the allowed 15m")
                        == true)
                #expect(reports["registry_replication"]?.detail?.contains("replication is Updating") == true)
                #expect(reports["compute_quota"]?.detail?.contains("36 of 48 free, the scale-up needs 40") == true)
                #expect(reports["endpoints"]?.detail == "embed is Creating")
                let view = try await view(client)
                #expect(view["endpoints"]?["status"]?.stringValue == "not_ready")
                #expect(view["endpoints"]?["detail"]?.stringValue == "embed is Creating")
            }
        }
    }

    @Test("a 429 waits its Retry-After and tries again; one longer than maxRetryAfter makes the check unknown")
    func throttling() async throws {
        let arm = LocalResourceManager()
        let throttled = try Fixtures.resourceManager("error-throttled.json").canonicalString
        arm.override("/hubwestusdata", [(429, ["Retry-After": "1"], throttled)])
        arm.override("/replications", [(429, ["Retry-After": "3600"], throttled)])
        try await arm.application().test(.live) { armClient in
            let port = try #require(armClient.port)
            let standby = makeStandby(port: port)
            try await standby.run { _, components in
                let reports = try await poll(standby, components)
                #expect(reports["storage_replication"]?.status == .ready)
                #expect(reports["registry_replication"]?.status == .unknown)
                #expect(
                    reports["registry_replication"]?.detail?.contains(
                        "ARM answered 429: TooManyRequests") == true)
                #expect(reports["registry_replication"]?.detail?.contains("retry after 3600s") == true)
                let storageCalls = arm.state.withLock { $0.armRequests.filter { $0.path.hasSuffix("/hubwestusdata") } }
                #expect(storageCalls.count == 2)
                if storageCalls.count == 2 {
                    #expect(storageCalls[1].at.timeIntervalSince(storageCalls[0].at) >= 0.9)
                }
            }
        }
    }

    @Test("an expired token is renewed once and the call repeated")
    func expiredToken() async throws {
        let arm = LocalResourceManager()
        arm.state.withLock { $0.expireFirstToken = true }
        try await arm.application().test(.live) { armClient in
            let port = try #require(armClient.port)
            let standby = makeStandby(port: port)
            try await standby.run { _, components in
                let reports = try await poll(standby, components)
                #expect(reports.values.allSatisfy { $0.status == .ready })
                let state = arm.state.withLock { $0 }
                #expect(state.tokenForms.count == 2)
                #expect(state.armRequests.filter { $0.authorization == "Bearer token-1" }.count == 1)
            }
        }
    }

    @Test("malformed answers, a refused sign-in and a missing resource are unknown, never ready")
    func failuresAreUnknown() async throws {
        let arm = LocalResourceManager()
        arm.override("/hubwestusdata", [(200, [:], "<html>gateway</html>")])
        arm.override("/usages", [(200, [:], #"{"value":"not a list"}"#)])
        arm.override(
            "/onlineEndpoints",
            [(404, [:], #"{"error":{"code":"ResourceNotFound","message":"The workspace was not found."}}"#)])
        arm.override("/replications", [(200, [:], #"{"value":[{"name":"westus","location":"westus"}]}"#)])
        try await arm.application().test(.live) { armClient in
            let port = try #require(armClient.port)
            let standby = makeStandby(port: port)
            try await standby.run { _, components in
                let reports = try await poll(standby, components)
                #expect(reports.values.allSatisfy { $0.status == .unknown })
                #expect(reports["storage_replication"]?.detail?.contains("not a JSON object") == true)
                #expect(reports["compute_quota"]?.detail?.contains("no value list") == true)
                #expect(reports["endpoints"]?.detail?.contains("ARM answered 404: ResourceNotFound") == true)
                #expect(reports["registry_replication"]?.detail?.contains("no provisioningState") == true)
            }
        }
        let refusing = LocalResourceManager()
        refusing.state.withLock {
            $0.tokenEndpointFailure = (
                401,
                #"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided."}"#
            )
        }
        try await refusing.application().test(.live) { armClient in
            let port = try #require(armClient.port)
            let standby = makeStandby(port: port)
            try await standby.run { client, components in
                let reports = try await poll(standby, components)
                #expect(reports.count == 4)
                #expect(reports.values.allSatisfy { $0.status == .unknown })
                #expect(
                    reports["compute_quota"]?.detail
                        == "Entra ID answered 401: invalid_client: AADSTS7000215: Invalid client secret provided.")
                #expect(refusing.state.withLock { $0.armRequests.isEmpty })
                let view = try await view(client)
                #expect(view.values.allSatisfy { $0["status"]?.stringValue == "unknown" })
            }
        }
    }

    @Test("a managed identity signs in at its endpoint with the Metadata header")
    func managedIdentity() async throws {
        let arm = LocalResourceManager()
        try await arm.application().test(.live) { armClient in
            let port = try #require(armClient.port)
            let standby = makeStandby(
                port: port,
                azure: """
                        credential: managedIdentity
                        clientId: user-assigned-id
                        managedIdentityEndpoint: http://127.0.0.1:\(port)/msi/token
                        resourceManager: http://127.0.0.1:\(port)
                    """)
            try await standby.run { _, components in
                let reports = try await poll(standby, components)
                #expect(reports.values.allSatisfy { $0.status == .ready })
                let request = try #require(arm.state.withLock { $0.managedIdentityRequests.first })
                #expect(request.metadata == "true")
                #expect(request.query.contains("api-version=2018-02-01"))
                #expect(request.query.contains("client_id=user-assigned-id"))
                #expect(request.query.contains("resource=http%3A%2F%2F127.0.0.1%3A\(port)%2F"))
            }
        }
    }

    @Test("with requireReadyTarget, a failover waits for the polled target to be ready")
    func requireReadyTargetHoldsUntilPolledReady() async throws {
        let arm = LocalResourceManager()
        arm.override("/hubwestusdata", [(200, [:], #"{"sku":{"name":"Standard_LRS"},"properties":{}}"#)])
        try await arm.application().test(.live) { armClient in
            let port = try #require(armClient.port)
            var configured = makeStandby(port: port)
            configured.deploymentsYAML = Self.deployments.replacingOccurrences(
                of: "  - id: foundry-prod\n    pattern: active-passive\n",
                with: "  - id: foundry-prod\n    pattern: active-passive\n    policy: { requireReadyTarget: true }\n")
            let standby = configured
            try await standby.run { client, components in
                let first = try await poll(standby, components)
                #expect(first["storage_replication"]?.detail == "hubwestusdata: sku Standard_LRS is not geo-redundant")
                for offset: TimeInterval in [1, 11, 21] {
                    try await standby.report(client, "eastus-hub", "failure", at: offset)
                }
                #expect(try await client.failoverEvents().isEmpty)
                let automation = try await client.deployment()["automation"]
                #expect(automation?["state"]?.stringValue == "held")
                #expect(automation?["reason"]?.stringValue?.contains("storage_replication not_ready") == true)
                // Geo-redundant again at the next pass: the failover goes ahead.
                _ = try await poll(standby, components)
                #expect(try await client.failoverEvents().count == 1)
            }
        }
    }

    @Test("a scale-up on a hub whose ids name no subscription is unknown, and asks ARM nothing")
    func quotaWithoutSubscription() async throws {
        let arm = LocalResourceManager()
        try await arm.application().test(.live) { armClient in
            let port = try #require(armClient.port)
            var configured = makeStandby(port: port)
            configured.deploymentsYAML = """
                  - id: foundry-prod
                    pattern: active-passive
                    hubs:
                      - { id: eastus-hub, region: eastus, role: primary }
                      - id: westus-hub
                        region: westus
                        role: secondary
                        readiness: { scaleUp: { vmFamily: Standard_NC_Family_Cluster_Dedicated_vCPUs, vCPUs: 8 } }
                """
            let standby = configured
            try await standby.run { _, components in
                let reports = try await poll(standby, components)
                #expect(reports.keys.sorted() == ["compute_quota"])
                #expect(reports["compute_quota"]?.status == .unknown)
                #expect(reports["compute_quota"]?.detail == "no ARM id of the hub names its subscription")
                #expect(arm.state.withLock { $0.armRequests.isEmpty && $0.tokenForms.isEmpty })
            }
        }
    }

    @Test("the readiness section is checked: credentials need their ids, plain http beyond loopback is refused")
    func configurationProblems() throws {
        func problems(_ readiness: String, environment: [String: String] = [:]) -> [String] {
            var standby = TestStandby()
            standby.deploymentsYAML = Self.deployments
            standby.extraYAML = readiness
            var env = environment
            env["WEBHOOK_TOKEN"] = TestStandby.webhookToken
            do {
                _ = try ConfigLoader.parse(standby.yaml, environment: env)
                return []
            } catch {
                return "\(error)".split(separator: "\n").map(String.init)
            }
        }
        let missing = problems("readiness:\n  azure: { credential: clientSecret }")
        #expect(missing.contains { $0.contains("readiness.azure.tenantId") && $0.contains("AZURE_TENANT_ID") })
        #expect(missing.contains { $0.contains("readiness.azure.clientSecret") })
        #expect(
            problems(
                "readiness:\n  azure: { credential: clientSecret }",
                environment: ["AZURE_TENANT_ID": "t", "AZURE_CLIENT_ID": "c", "AZURE_CLIENT_SECRET": "s"]
            ).isEmpty)
        #expect(
            problems("readiness:\n  azure: { resourceManager: \"http://arm.example.net\" }").contains {
                $0.contains("readiness.azure.resourceManager")
            })
        #expect(problems("readiness:\n  interval: 0s").contains { $0.contains("readiness.interval") })
        // `auto` picks a workload identity when its token file is in the environment.
        var standby = TestStandby()
        standby.extraYAML = "readiness: {}"
        let configuration = try ConfigLoader.parse(
            standby.yaml,
            environment: [
                "WEBHOOK_TOKEN": TestStandby.webhookToken, "AZURE_TENANT_ID": "t", "AZURE_CLIENT_ID": "c",
                "AZURE_FEDERATED_TOKEN_FILE": "/var/run/secrets/azure/tokens/azure-identity-token",
            ])
        #expect(configuration.readiness.enabled)
        guard case .workloadIdentity(_, "t", "c", let file) = configuration.readiness.credential else {
            Issue.record("expected a workload identity, got \(configuration.readiness.credential)")
            return
        }
        #expect(file == "/var/run/secrets/azure/tokens/azure-identity-token")
        #expect(try !TestStandby().configuration().readiness.enabled)
    }
}

@Suite("Readiness of the secondary: reading ARM's answers")
struct ARMReadinessInterpretationTests {
    let now = Timestamp.parse("2026-11-28T10:00:00Z")!
    let hub = HubDefinition(
        id: "westus-hub", region: "westus", regionName: "West US", role: .secondary, endpoint: "", resources: [])

    @Test("storage: geo-redundant, Live, within the lag; anything else is not ready or unknown")
    func storage() throws {
        let body = try Fixtures.resourceManager("storage-account-geo-replication.json")
        #expect(ARMReadiness.storage(body, account: "a", now: now, maxLag: 900).status == .ready)
        #expect(ARMReadiness.storage(body, account: "a", now: now, maxLag: 60).status == .notReady)
        let bootstrap: JSONValue = .object([
            "sku": .object(["name": .string("Standard_GZRS")]),
            "properties": .object(["geoReplicationStats": .object(["status": .string("Bootstrap")])]),
        ])
        #expect(
            ARMReadiness.storage(bootstrap, account: "a", now: now, maxLag: 900).detail
                == "a: geo-replication is Bootstrap")
        let unexpanded: JSONValue = .object([
            "sku": .object(["name": .string("Standard_RAGRS")]), "properties": .object([:]),
        ])
        #expect(ARMReadiness.storage(unexpanded, account: "a", now: now, maxLag: 900).status == .unknown)
        #expect(ARMReadiness.storage(.object([:]), account: "a", now: now, maxLag: 900).status == .unknown)
    }

    @Test("registry, quota and endpoints from the documented lists")
    func lists() throws {
        let replications = try #require(try Fixtures.resourceManager("registry-replications.json")["value"]?.arrayValue)
        #expect(ARMReadiness.registry(replications, registry: "r", hub: hub).status == .ready)
        var central = hub
        central.region = "centralus"
        central.regionName = "Central US"
        let missing = ARMReadiness.registry(replications, registry: "r", hub: central)
        #expect(missing.status == .notReady)
        #expect(missing.detail == "r: no replication in centralus (replications: eastus, westus)")

        let usages = try #require(try Fixtures.resourceManager("ml-usages.json")["value"]?.arrayValue)
        let byName = ComputeScaleUp(vmFamily: "Standard NC Family Cluster Dedicated vCPUs", vCPUs: 36)
        #expect(ARMReadiness.quota(usages, scaleUp: byName, region: "westus").status == .ready)
        let dsv2 = ComputeScaleUp(vmFamily: "standard_dsv2_family_cluster_dedicated_vcpus", vCPUs: 8)
        #expect(ARMReadiness.quota(usages, scaleUp: dsv2, region: "westus").status == .notReady)
        // Unlimited family, but beyond the regional dedicated total.
        let lowPriority = ComputeScaleUp(vmFamily: "Standard_NC_Family_Cluster_LowPriority_vCPUs", vCPUs: 500)
        let regional = ARMReadiness.quota(usages, scaleUp: lowPriority, region: "westus")
        #expect(regional.status == .notReady)
        #expect(regional.detail.hasPrefix("Total Cluster Dedicated Regional vCPUs in westus: 160 of 200 free"))
        let unknownFamily = ComputeScaleUp(vmFamily: "Standard_ZZ_Family", vCPUs: 1)
        #expect(ARMReadiness.quota(usages, scaleUp: unknownFamily, region: "westus").status == .unknown)

        let endpoints = try #require(try Fixtures.resourceManager("online-endpoints.json")["value"]?.arrayValue)
        #expect(ARMReadiness.endpoints(endpoints, required: []).detail == "1 of 2 online endpoints serving")
        #expect(ARMReadiness.endpoints(endpoints, required: ["CHAT"]).status == .ready)
        #expect(ARMReadiness.endpoints(endpoints, required: ["chat", "rerank"]).detail == "rerank is missing")
        #expect(ARMReadiness.endpoints([], required: []).status == .notReady)
    }

    @Test("ARM ids: the three kinds readiness reads, not their children")
    func resourceKinds() {
        let base = "/subscriptions/S/resourceGroups/g/providers"
        #expect(ARMResource(ResourceID("\(base)/Microsoft.Storage/storageAccounts/a"))?.kind == .storageAccount)
        #expect(
            ARMResource(ResourceID("\(base)/Microsoft.ContainerRegistry/registries/r/"))?.kind == .containerRegistry)
        #expect(
            ARMResource(ResourceID("\(base)/Microsoft.MachineLearningServices/workspaces/w"))?.subscriptionPath == "S")
        #expect(ARMResource(ResourceID("\(base)/Microsoft.Storage/storageAccounts/a/blobServices/default")) == nil)
        #expect(ARMResource(ResourceID("\(base)/Microsoft.Compute/virtualMachines/vm")) == nil)
        #expect(ARMResource(ResourceID("/subscriptions/S/resourceGroups/g")) == nil)
        #expect(ARMResource.subscription(of: ResourceID("/subscriptions/S/resourceGroups/g")) == "S")
        #expect(ARMResource.subscription(of: ResourceID("/providers/Microsoft.Web")) == nil)
    }
}
