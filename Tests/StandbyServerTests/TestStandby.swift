import AsyncHTTPClient
import Foundation
import GRDB
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import NIOHTTP1
import StandbyApp
import StandbyCore
import StandbyPostgres
import StandbyPrimitives
import StandbyServer
import StandbyStore
import StandbyTestSupport
import Testing

/// A Standby instance for one test: its own config and SQLite file in a temp folder, served over
/// real HTTP on a loopback port.
struct TestStandby {
    static let webhookToken = "test-webhook-token"
    static let readerToken = "test-reader-token"
    static let operatorToken = "test-operator-token"
    static let reporterToken = "test-reporter-token"
    static let adminToken = "test-admin-token"

    let folder = TemporaryFolder()
    let time: ManualTimeSource
    /// Top-level sections added to the configuration (`audit: {...}`, say).
    var extraYAML = ""
    /// 0 picks a free port; a fixed one lets a restarted process answer where clients expect it.
    var port = 0
    /// More keys of the `server` mapping, each starting with ", ".
    var serverYAML = ""
    var webhookTokensYAML = "[\"${WEBHOOK_TOKEN}\", \"rotated-second-token\"]"
    var busyTimeout = "2s"
    var maxBodyBytes = 1_048_576
    var idleTimeout = "30s"
    var databaseFolder: String?
    /// A `database.url` (PostgreSQL) instead of the SQLite file in the test's folder.
    var databaseURL: String?
    var deploymentsYAML = TestStandby.defaultDeployments
    /// More environment variables for `${VAR}` references in the config.
    var environment: [String: String] = [:]

    init(time: ManualTimeSource = ManualTimeSource()) {
        self.time = time
    }

    var databasePath: String { (databaseFolder ?? folder.path("data")) + "/standby.sqlite" }

    var yaml: String {
        """
        server: { host: 127.0.0.1, port: \(port), maxBodyBytes: \(maxBodyBytes), idleTimeout: \(idleTimeout)\(serverYAML) }
        \(databaseURL.map { "database: { url: \"\($0)\" }" } ?? "database: { path: \"\(databasePath)\", synchronous: full, busyTimeout: \(busyTimeout) }")
        auth:
          webhookTokens: \(webhookTokensYAML)
          apiTokens:
            - { name: dashboard, token: "\(Self.readerToken)", roles: [reader] }
            - { name: app-layer, token: "\(Self.operatorToken)", roles: [reader, reporter, operator] }
            - { name: probe, token: "\(Self.reporterToken)", roles: [reporter] }
            - { name: root, token: "sha256:\(Data(Self.adminToken.utf8).sha256Hex)", roles: [admin] }
        \(extraYAML)
        deployments:
        \(deploymentsYAML)
        """
    }

    static let defaultDeployments = """
          - id: foundry-prod
            pattern: active-passive
            hubs:
              - id: eastus-hub
                region: eastus
                regionName: East US
                role: primary
                endpoint: https://eastus-hub.example.net
                resources:
                  - /subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/test-RG/providers/Microsoft.Storage/storageAccounts/test-storageAccount
                  - /subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/test-RG/providers/Microsoft.Compute/virtualMachines/test-VM
              - id: westus-hub
                region: westus
                regionName: West US
                role: secondary
                endpoint: https://westus-hub.example.net
                resources:
                  - /subscriptions/aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e/resourceGroups/test-RG
            policy:
              alerts:
                serviceHealthServices: ["Azure Machine Learning"]
                failoverRules: ["hub-availability"]
        """

    func configuration() throws -> StandbyConfiguration {
        try ConfigLoader.parse(yaml, environment: environment.merging(["WEBHOOK_TOKEN": Self.webhookToken]) { $1 })
    }

    func components() async throws -> StandbyComponents {
        try await StandbyComponents(configuration: configuration(), timeSource: time)
    }

    /// Runs `body` against the application through Hummingbird's router test client: the routes,
    /// middleware and use cases as served, without a socket.
    func run<Value: Sendable>(
        _ body: @Sendable (any TestClientProtocol, StandbyComponents) async throws -> Value
    ) async throws -> Value {
        try await serve(.router, body)
    }

    /// Runs `body` against a live server on loopback, for what needs a real socket (the request
    /// guard below the router, the peer's address, connection handling); the server stops when
    /// `body` returns.
    func live<Value: Sendable>(
        _ body: @Sendable (any TestClientProtocol, StandbyComponents) async throws -> Value
    ) async throws -> Value {
        try await serve(.live, body)
    }

    private func serve<Value: Sendable>(
        _ setup: TestingSetup, _ body: @Sendable (any TestClientProtocol, StandbyComponents) async throws -> Value
    ) async throws -> Value {
        let components = try await components()
        var logger = Logger(label: "standby-test")
        logger.logLevel = .warning
        let app = try buildApplication(components: components, logger: logger, withTicker: false)
        let value = try await app.test(setup) { client in try await body(client, components) }
        // Like a process that exits: the file is closed before the next run (a restart) opens it,
        // rather than whenever the last reference to this pool happens to go.
        try components.database?.pool.close()
        components.postgres?.shutdown()
        return value
    }

    static let start = Timestamp.parse("2026-11-28T10:00:00Z")!

    /// Posts one probe report observed `offset` seconds after the test's start, moving the clock
    /// there first (as a real probe reports as it observes).
    @discardableResult
    func report(
        _ client: any TestClientProtocol, _ hub: String, _ outcome: String, at offset: TimeInterval,
        source: String = "probe-westeurope"
    ) async throws -> TestResponse {
        let observed = Self.start.addingTimeInterval(offset)
        if observed > time.now() { time.set(observed) }
        return try await client.send(
            .post, "/v1/health-reports",
            json:
                #"{"hub":"\#(hub)","source":"\#(source)","outcome":"\#(outcome)","observedAt":"\#(Timestamp.format(observed))","latencyMs":1200,"statusCode":503}"#,
            token: Self.reporterToken)
    }

    /// A separate read connection on the test's database file, to check what was committed.
    func openDatabase() throws -> DatabaseQueue {
        var configuration = Configuration()
        configuration.readonly = true
        return try DatabaseQueue(path: databasePath, configuration: configuration)
    }
}

extension TestClientProtocol {
    func postWebhook(_ body: Data, token: String? = TestStandby.webhookToken, contentType: String = "application/json")
        async throws -> TestResponse
    {
        let uri = token.map { "/webhooks/azure-monitor?token=\($0)" } ?? "/webhooks/azure-monitor"
        return try await execute(
            uri: uri, method: .post, headers: [.contentType: contentType], body: ByteBuffer(bytes: body))
    }

    func get(_ uri: String, token: String = TestStandby.readerToken) async throws -> TestResponse {
        try await execute(uri: uri, method: .get, headers: [.authorization: "Bearer \(token)"])
    }

    func send(
        _ method: HTTPRequest.Method, _ uri: String, json: String, token: String = TestStandby.operatorToken
    ) async throws -> TestResponse {
        try await execute(
            uri: uri, method: method,
            headers: [.authorization: "Bearer \(token)", .contentType: "application/json"],
            body: ByteBuffer(string: json))
    }
}

extension TestClientProtocol {
    func deployment(_ id: String = "foundry-prod") async throws -> JSONValue {
        try await get("/v1/deployments/\(id)").json
    }

    func commands(_ query: String = "") async throws -> [JSONValue] {
        try await get("/v1/commands\(query)").json["items"]?.arrayValue ?? []
    }

    func failoverEvents() async throws -> [JSONValue] {
        try await get("/v1/failover-events").json["items"]?.arrayValue ?? []
    }
}

extension TestResponse {
    var json: JSONValue {
        (try? JSONValue.decode(Data(body.readableBytesView))) ?? .null
    }

    var text: String { String(buffer: body) }
}

/// Requests on connections of their own (AsyncHTTPClient's pool), for after a response that
/// closed the test client's connection.
enum FreshConnection {
    static func execute(
        port: Int, _ method: HTTPRequest.Method, _ uri: String, headers: HTTPFields = [:], body: Data? = nil
    ) async throws -> Response {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(uri)")
        request.method = .init(rawValue: method.rawValue)
        for field in headers { request.headers.add(name: field.name.rawName, value: field.value) }
        if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        let bytes = try await response.body.collect(upTo: 1 << 24)
        var fields = HTTPFields()
        for header in response.headers {
            if let name = HTTPField.Name(header.name) { fields.append(HTTPField(name: name, value: header.value)) }
        }
        return Response(status: .init(code: Int(response.status.code)), headers: fields, body: bytes)
    }

    struct Response: Sendable {
        var status: HTTPResponse.Status
        var headers: HTTPFields
        var body: ByteBuffer
        var json: JSONValue { (try? JSONValue.decode(Data(body.readableBytesView))) ?? .null }
    }

    static func postWebhook(port: Int, _ body: Data) async throws -> Response {
        try await execute(
            port: port, .post, "/webhooks/azure-monitor?token=\(TestStandby.webhookToken)",
            headers: [.contentType: "application/json"], body: body)
    }

    static func deployment(port: Int, _ id: String = "foundry-prod") async throws -> JSONValue {
        try await execute(
            port: port, .get, "/v1/deployments/\(id)", headers: [.authorization: "Bearer \(TestStandby.readerToken)"]
        ).json
    }
}
