import Crypto
import Foundation
import Hummingbird
import Logging
import StandbyCore
import StandbyPrimitives

/// Checks secrets without leaking, through timing, how much of a guess was right: both sides are
/// hashed to equal length first, and every configured secret is compared every time.
public struct Authenticator: Sendable {
    private let webhookDigests: [[UInt8]]
    private let apiTokens: [APIToken]
    private let metricsDigest: [UInt8]?

    public init(auth: AuthSettings, metricsToken: Secret? = nil) {
        webhookDigests = auth.webhookTokens.map { Self.digest($0.value) }
        apiTokens = auth.apiTokens
        metricsDigest = metricsToken.map { Self.digest($0.value) }
    }

    private static func digest(_ secret: String) -> [UInt8] { Array(SHA256.hash(data: Data(secret.utf8))) }

    /// Whether any `?token=` is configured.
    public var acceptsWebhooks: Bool { !webhookDigests.isEmpty }

    public func isValidWebhookToken(_ token: String) -> Bool {
        let presented = Self.digest(token)
        var matched = false
        for digest in webhookDigests where constantTimeEqual(digest, presented) { matched = true }
        return matched
    }

    /// Whether `/metrics` needs a token (`server.metricsToken`).
    public var protectsMetrics: Bool { metricsDigest != nil }

    public func isValidMetricsToken(_ token: String) -> Bool {
        guard let metricsDigest else { return false }
        return constantTimeEqual(metricsDigest, Self.digest(token))
    }

    /// The credential of an `Authorization: Bearer <credential>` header; nil for any other scheme.
    static func bearerCredential(_ header: String) -> String? {
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        return String(parts[1]).trimmingCharacters(in: .whitespaces)
    }

    /// The API token whose secret is `bearer`, if any.
    public func apiToken(bearer: String) -> APIToken? {
        let presented = Self.digest(bearer)
        var found: APIToken?
        for token in apiTokens where constantTimeEqual(token.secretSHA256, presented) { found = token }
        return found
    }
}

/// Requires a bearer API token holding one of `roles` (or `admin`) on every route below it.
struct APIAuthMiddleware: RouterMiddleware {
    typealias Context = StandbyRequestContext
    let authenticator: Authenticator
    let roles: [Role]

    init(authenticator: Authenticator, role: Role) {
        self.init(authenticator: authenticator, anyOf: [role])
    }

    init(authenticator: Authenticator, anyOf roles: [Role]) {
        self.authenticator = authenticator
        self.roles = roles
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        guard let header = request.headers[.authorization] else {
            throw Problem.unauthorized("send an API token as Authorization: Bearer <token>")
        }
        guard let credential = Authenticator.bearerCredential(header) else {
            throw Problem.unauthorized("the Authorization header must use the Bearer scheme")
        }
        guard let token = authenticator.apiToken(bearer: credential) else {
            throw Problem.unauthorized("the API token is not valid")
        }
        guard roles.contains(where: token.allows) else {
            let needed = roles.map(\.rawValue).joined(separator: " or ")
            throw Problem.forbidden("token \"\(token.name)\" does not have the \(needed) role")
        }
        var context = context
        context.identity = token
        context.logger[metadataKey: "actor"] = .string(token.name)
        return try await next(request, context)
    }
}
