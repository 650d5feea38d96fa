import AsyncHTTPClient
import Foundation
import JWTKit
import Logging
import NIOCore
import NIOHTTP1
import StandbyCore
import StandbyPrimitives
import Synchronization

/// The claims of the token Azure Monitor's Secure Webhook sends.
struct SecureWebhookClaims: JWTPayload {
    var exp: ExpirationClaim
    var nbf: NotBeforeClaim?
    var iss: IssuerClaim
    var aud: AudienceClaim
    var roles: [String]?
    var tid: String?
    var appid: String?

    func verify(using algorithm: some JWTAlgorithm) async throws {
        try exp.verifyNotExpired()
        try nbf?.verifyNotBefore()
    }
}

/// Verifies Secure Webhook bearer tokens: RS256 only, signed by exactly the key its `kid` names in
/// the configured JWKS, with the configured tenant (`tid`), issuer, audience and the
/// `ActionGroupsSecureWebhook` role.
///
/// Keys are cached. When the cache is older than `jwksRefresh` it is refreshed in the background
/// while the cached keys keep serving. A token whose `kid` is missing from the cache (Entra ID
/// publishes new keys before it signs with them) triggers one refresh at once, shared by every
/// request waiting for it and at most one per `forcedRefreshInterval`; failed fetches back off
/// exponentially, so a failing or slow JWKS costs one outbound request, not one per delivery.
public final class SecureWebhookVerifier: Sendable {
    public struct Rejection: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// The keys of one JWKS, each alone in its own collection so that verification uses exactly
    /// the key the token names (jwt-kit falls back to a default key for an unknown `kid`).
    struct KeySet: Sendable {
        var keys: [String: JWTKeyCollection]
    }

    private struct State {
        var keySet: KeySet?
        var loadedAt: Date?
        var refresh: Task<KeySet, any Error>?
        var lastForcedRefresh: Date?
        var failures = 0
        var retryNotBefore: Date?
    }

    /// A token with an unknown `kid` forces a refresh at most this often.
    static let forcedRefreshInterval: TimeInterval = 10
    /// Failed fetches wait 5 s, 10 s, 20 s … up to 5 minutes before the next.
    static let failureBackoff: (base: TimeInterval, maximum: TimeInterval) = (5, 300)

    let settings: SecureWebhookSettings
    let logger: Logger
    let fetchTimeout: TimeAmount
    private let state = Mutex(State())

    public init(settings: SecureWebhookSettings, logger: Logger, fetchTimeout: TimeAmount = .seconds(5)) {
        self.settings = settings
        self.logger = logger
        self.fetchTimeout = fetchTimeout
    }

    public func verify(bearer token: String, now: Date) async throws -> [String] {
        guard let header = Self.header(of: token), header["alg"]?.stringValue == "RS256" else {
            throw Rejection(description: "the token is not an RS256-signed JWT")
        }
        // The token must parse before any key is fetched: garbage never reaches the JWKS.
        guard (try? await JWTKeyCollection().unverified(token, as: SecureWebhookClaims.self)) != nil else {
            throw Rejection(description: "the token is not a valid Secure Webhook token")
        }
        guard let kid = header["kid"]?.stringValue, !kid.isEmpty else {
            throw Rejection(description: "the token names no signing key (kid)")
        }
        guard let key = try await key(kid, now: now) else {
            throw Rejection(description: "the token is signed by a key the tenant does not publish")
        }
        let claims: SecureWebhookClaims
        do {
            claims = try await key.verify(token, as: SecureWebhookClaims.self)
        } catch {
            logger.debug("Secure Webhook token refused", metadata: ["reason": .string(Self.describe(error))])
            throw Rejection(description: "the token's signature or validity period is not valid")
        }
        guard let tenant = claims.tid, tenant.lowercased() == settings.tenantId.lowercased() else {
            throw Rejection(description: "the token's tenant is not accepted")
        }
        guard settings.issuers.contains(claims.iss.value) else {
            throw Rejection(description: "the token's issuer is not accepted")
        }
        guard claims.aud.value.contains(where: settings.audiences.contains) else {
            throw Rejection(description: "the token's audience is not accepted")
        }
        guard claims.roles?.contains(SecureWebhookSettings.requiredRole) == true else {
            throw Rejection(description: "the token lacks the \(SecureWebhookSettings.requiredRole) role")
        }
        return claims.roles ?? []
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? JWTError { return error.reason ?? "\(error.errorType)" }
        return String(describing: type(of: error))
    }

    static func header(of token: String) -> JSONValue? {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else { return nil }
        var base64 = parts[0].replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        guard let data = Data(base64Encoded: base64), let json = try? JSONValue.decode(data), json.objectValue != nil
        else { return nil }
        return json
    }

    /// The key named `kid`: from the cache when it has it, else after one (shared) refresh.
    private func key(_ kid: String, now: Date) async throws -> JWTKeyCollection? {
        enum Plan {
            case cached(JWTKeyCollection)
            case refresh(Task<KeySet, any Error>)
            /// The key set is known and recent, and does not hold this kid.
            case unknownKey
            /// No key set could be loaded, and the next fetch is not due yet.
            case unavailable
        }
        let plan: Plan = state.withLock { state in
            let stale = state.loadedAt.map { now.timeIntervalSince($0) >= settings.jwksRefresh } ?? true
            let mayFetch = state.retryNotBefore.map { now >= $0 } ?? true
            if let cached = state.keySet?.keys[kid] {
                // Stale keys keep serving; the refresh runs beside them.
                if stale, mayFetch, state.refresh == nil { _ = startRefresh(&state, now: now) }
                return .cached(cached)
            }
            if let running = state.refresh { return .refresh(running) }
            guard mayFetch else { return state.keySet == nil ? .unavailable : .unknownKey }
            if state.keySet != nil, !stale,
                let last = state.lastForcedRefresh, now.timeIntervalSince(last) < Self.forcedRefreshInterval
            {
                return .unknownKey
            }
            if state.keySet != nil { state.lastForcedRefresh = now }
            return .refresh(startRefresh(&state, now: now))
        }
        switch plan {
        case .cached(let key):
            return key
        case .refresh(let task):
            do {
                return try await task.value.keys[kid]
            } catch {
                throw Rejection(description: "the signing keys (JWKS) cannot be loaded")
            }
        case .unknownKey:
            return nil
        case .unavailable:
            throw Rejection(description: "the signing keys (JWKS) cannot be loaded; retrying later")
        }
    }

    /// Starts the one refresh; its outcome updates the cache (or the backoff) exactly once.
    private func startRefresh(_ state: inout State, now: Date) -> Task<KeySet, any Error> {
        let location = settings.jwks
        let timeout = fetchTimeout
        let task = Task<KeySet, any Error> { [weak self] in
            do {
                let keySet = try await Self.keySet(fromJWKS: try await Self.loadJWKS(location, timeout: timeout))
                self?.state.withLock { state in
                    state = State(
                        keySet: keySet, loadedAt: now, refresh: nil, lastForcedRefresh: state.lastForcedRefresh)
                }
                return keySet
            } catch {
                self?.logger.warning(
                    "cannot load the Secure Webhook JWKS", metadata: ["error": .string(Self.describe(error))])
                self?.state.withLock { state in
                    state.refresh = nil
                    state.failures += 1
                    let delay = min(
                        Self.failureBackoff.maximum,
                        Self.failureBackoff.base * pow(2, Double(min(state.failures - 1, 16))))
                    state.retryNotBefore = now.addingTimeInterval(delay)
                }
                throw error
            }
        }
        state.refresh = task
        return task
    }

    /// One collection per RSA key with a `kid`. Entra ID publishes RSA keys without `alg`; Secure
    /// Webhook tokens are RS256, so each is added as such.
    static func keySet(fromJWKS jwks: String) async throws -> KeySet {
        guard case .object(let root)? = JSONValue.parse(jwks), case .array(let entries)? = root["keys"] else {
            throw Rejection(description: "the JWKS has no keys list")
        }
        var keys: [String: JWTKeyCollection] = [:]
        for entry in entries {
            guard case .object(var members) = entry, entry["kty"]?.stringValue == "RSA",
                let kid = entry["kid"]?.stringValue, !kid.isEmpty
            else { continue }
            if let alg = entry["alg"]?.stringValue, alg != "RS256" { continue }
            members["alg"] = .string("RS256")
            let collection = JWTKeyCollection()
            do {
                try await collection.add(
                    jwksJSON: JSONValue.object(["keys": .array([.object(members)])]).canonicalString())
            } catch {
                continue
            }
            keys[kid] = collection
        }
        guard !keys.isEmpty else { throw Rejection(description: "the JWKS holds no usable RSA key") }
        return KeySet(keys: keys)
    }

    static func loadJWKS(_ location: String, timeout: TimeAmount) async throws -> String {
        if location.hasPrefix("https://") || location.hasPrefix("http://") {
            var request = HTTPClientRequest(url: location)
            request.method = .GET
            let response = try await HTTPClient.shared.execute(request, timeout: timeout)
            guard response.status == .ok else {
                throw Rejection(description: "JWKS answered HTTP \(response.status.code)")
            }
            let body = try await response.body.collect(upTo: 1 << 20)
            return String(buffer: body)
        }
        return try String(contentsOfFile: location, encoding: .utf8)
    }

    /// Every subscription ID that a text names as `/subscriptions/<id>`, lower-cased.
    public static func subscriptions(inText text: String) -> Set<String> {
        var found = Set<String>()
        let marker = "/subscriptions/"
        var rest = Substring(text.lowercased())
        while let range = rest.range(of: marker) {
            rest = rest[range.upperBound...]
            let id = rest.prefix { $0.isLetter || $0.isNumber || $0 == "-" }
            if !id.isEmpty { found.insert(String(id)) }
        }
        return found
    }

    /// Subscription IDs named by an alert's ARM IDs, lower-cased.
    public static func subscriptions(in ids: [String]) -> Set<String> {
        ids.reduce(into: Set<String>()) { found, id in found.formUnion(subscriptions(inText: id)) }
    }
}
