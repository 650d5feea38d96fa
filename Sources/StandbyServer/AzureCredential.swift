import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import StandbyPrimitives

/// How Standby signs in to Entra ID for Azure Resource Manager, chosen as Azure's SDKs choose:
/// a client secret or a federated (workload identity) token from the `AZURE_*` environment,
/// else the managed identity of the machine it runs on.
public enum AzureCredential: Sendable, Hashable, CustomStringConvertible {
    /// IMDS (`169.254.169.254`), or App Service / Container Apps' `IDENTITY_ENDPOINT` with its header.
    case managedIdentity(endpoint: String, header: Secret?, clientId: String?)
    /// OAuth 2.0 client credentials with a secret.
    case clientSecret(authorityHost: String, tenantId: String, clientId: String, secret: Secret)
    /// OAuth 2.0 client credentials with a federated token read from a file at each request
    /// (Kubernetes rotates it).
    case workloadIdentity(authorityHost: String, tenantId: String, clientId: String, tokenFile: String)

    public static let instanceMetadataEndpoint = "http://169.254.169.254/metadata/identity/oauth2/token"
    public static let publicAuthorityHost = "https://login.microsoftonline.com"

    public enum Kind: String, Sendable, Hashable, CaseIterable {
        case auto
        case managedIdentity
        case clientSecret
        case workloadIdentity
    }

    public var description: String {
        switch self {
        case .managedIdentity(let endpoint, _, let clientId):
            return "managed identity at \(endpoint)\(clientId.map { " (client \($0))" } ?? "")"
        case .clientSecret(_, let tenantId, let clientId, _):
            return "client secret of \(clientId) in tenant \(tenantId)"
        case .workloadIdentity(_, let tenantId, let clientId, let tokenFile):
            return "workload identity of \(clientId) in tenant \(tenantId) (token file \(tokenFile))"
        }
    }
}

/// An Entra ID access token and when it stops working.
struct AccessToken: Sendable {
    var value: String
    var expiresAt: Date
}

struct AzureTokenError: Error, CustomStringConvertible {
    var description: String
}

/// Fetches and caches the ARM access token of one credential; a token is renewed five minutes
/// before it expires, or at once when ARM refuses it (`invalidate`).
actor AzureTokenProvider {
    let credential: AzureCredential
    let resource: String
    let client: HTTPClient
    let timeout: TimeInterval
    let timeSource: any TimeSource
    private var cached: AccessToken?
    private var pending: Task<AccessToken, any Error>?

    init(
        credential: AzureCredential, resourceManager: String, client: HTTPClient, timeout: TimeInterval,
        timeSource: any TimeSource
    ) {
        self.credential = credential
        // Entra ID names ARM as a resource with a trailing slash (v1) or a `.default` scope (v2).
        self.resource = resourceManager.hasSuffix("/") ? resourceManager : resourceManager + "/"
        self.client = client
        self.timeout = timeout
        self.timeSource = timeSource
    }

    func token() async throws -> String {
        if let cached, cached.expiresAt.timeIntervalSince(timeSource.now()) > 300 { return cached.value }
        if let pending { return try await pending.value.value }
        let task = Task { try await self.fetch() }
        pending = task
        defer { pending = nil }
        let token = try await task.value
        cached = token
        return token.value
    }

    /// ARM refused the token (expired, revoked): the next call fetches a new one.
    func invalidate() {
        cached = nil
    }

    private func fetch() async throws -> AccessToken {
        var request: HTTPClientRequest
        switch credential {
        case .managedIdentity(let endpoint, let header, let clientId):
            var query = [
                ("api-version", header == nil ? "2018-02-01" : "2019-08-01"), ("resource", resource),
            ]
            if let clientId { query.append(("client_id", clientId)) }
            request = HTTPClientRequest(url: endpoint + (endpoint.contains("?") ? "&" : "?") + Self.form(query))
            if let header {
                request.headers.add(name: "X-IDENTITY-HEADER", value: header.value)
            } else {
                request.headers.add(name: "Metadata", value: "true")
            }
        case .clientSecret(let authorityHost, let tenantId, let clientId, let secret):
            request = Self.tokenRequest(
                authorityHost: authorityHost, tenantId: tenantId,
                form: [
                    ("grant_type", "client_credentials"), ("client_id", clientId), ("client_secret", secret.value),
                    ("scope", resource + ".default"),
                ])
        case .workloadIdentity(let authorityHost, let tenantId, let clientId, let tokenFile):
            let assertion: String
            do {
                assertion = try String(contentsOfFile: tokenFile, encoding: .utf8)
                    .trimmingCharacters(in: .whitespacesAndNewlines)
            } catch {
                throw AzureTokenError(description: "cannot read the federated token file \(tokenFile): \(error)")
            }
            request = Self.tokenRequest(
                authorityHost: authorityHost, tenantId: tenantId,
                form: [
                    ("grant_type", "client_credentials"), ("client_id", clientId),
                    ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
                    ("client_assertion", assertion), ("scope", resource + ".default"),
                ])
        }
        request.headers.add(name: "Accept", value: "application/json")
        let response: HTTPClientResponse
        let bytes: ByteBuffer
        do {
            response = try await client.execute(request, timeout: .milliseconds(Int64(timeout * 1000)))
            bytes = try await response.body.collect(upTo: 256 * 1024)
        } catch {
            throw AzureTokenError(description: "Entra ID token request failed: \(error)")
        }
        let body = try? JSONValue.decode(Data(bytes.readableBytesView))
        guard response.status.code == 200 else {
            let reason = [
                body?["error"]?.stringValue, body?["error_description"]?.stringValue.map { String($0.prefix(300)) },
            ]
            .compactMap { $0 }.joined(separator: ": ")
            throw AzureTokenError(
                description: "Entra ID answered \(response.status.code)\(reason.isEmpty ? "" : ": \(reason)")")
        }
        guard let value = body?["access_token"]?.stringValue, !value.isEmpty else {
            throw AzureTokenError(description: "Entra ID's answer has no access_token")
        }
        let now = timeSource.now()
        // v2 answers `expires_in` (seconds, a number); managed identity answers both as strings,
        // `expires_on` in epoch seconds.
        let expiresAt: Date
        if let seconds = body?["expires_in"]?.doubleValue {
            expiresAt = now.addingTimeInterval(seconds)
        } else if let epoch = body?["expires_on"]?.doubleValue {
            expiresAt = Date(timeIntervalSince1970: epoch)
        } else {
            expiresAt = now.addingTimeInterval(3600)
        }
        return AccessToken(value: value, expiresAt: expiresAt)
    }

    private static func tokenRequest(authorityHost: String, tenantId: String, form: [(String, String)])
        -> HTTPClientRequest
    {
        let host = authorityHost.hasSuffix("/") ? String(authorityHost.dropLast()) : authorityHost
        var request = HTTPClientRequest(url: "\(host)/\(tenantId)/oauth2/v2.0/token")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        request.body = .bytes(ByteBuffer(string: self.form(form)))
        return request
    }

    /// `application/x-www-form-urlencoded`, also used for query strings.
    static func form(_ pairs: [(String, String)]) -> String {
        pairs.map { key, value in "\(key)=\(queryEscaped(value))" }.joined(separator: "&")
    }
}
