import Foundation
import GRDB
import Hummingbird
import HummingbirdTesting
import HTTPTypes
import Logging
import NIOCore
import StandbyCore
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

    let folder = TemporaryFolder()
    let time: ManualTimeSource
    var extraYAML = ""
    var webhookTokensYAML = "[\"${WEBHOOK_TOKEN}\", \"rotated-second-token\"]"
    var busyTimeout = "2s"
    var maxBodyBytes = 1_048_576
    var deploymentsYAML = TestStandby.defaultDeployments

    init(time: ManualTimeSource = ManualTimeSource()) {
        self.time = time
    }

    var databasePath: String { folder.path("data/standby.sqlite") }

    var yaml: String {
        """
        server: { host: 127.0.0.1, port: 0, maxBodyBytes: \(maxBodyBytes) }
        database: { path: "\(databasePath)", synchronous: full, busyTimeout: \(busyTimeout) }
        auth:
          webhookTokens: \(webhookTokensYAML)
          apiTokens:
            - { name: dashboard, token: "\(Self.readerToken)", roles: [reader] }
            - { name: app-layer, token: "\(Self.operatorToken)", roles: [reader, reporter, operator] }
            - { name: probe, token: "\(Self.reporterToken)", roles: [reporter] }
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
        try ConfigLoader.parse(yaml, environment: ["WEBHOOK_TOKEN": Self.webhookToken])
    }

    func components() throws -> StandbyComponents {
        try StandbyComponents(configuration: configuration(), timeSource: time)
    }

    /// Runs `body` against a live server; the server stops when `body` returns.
    func live<Value: Sendable>(
        _ body: @Sendable (any TestClientProtocol, StandbyComponents) async throws -> Value
    ) async throws -> Value {
        let components = try components()
        var logger = Logger(label: "standby-test")
        logger.logLevel = .warning
        let app = buildApplication(components: components, logger: logger)
        return try await app.test(.live) { client in try await body(client, components) }
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

extension TestResponse {
    var json: JSONValue {
        (try? JSONValue.decode(Data(body.readableBytesView))) ?? .null
    }

    var text: String { String(buffer: body) }
}
