import AsyncHTTPClient
import Foundation
import JWTKit
import Logging
import NIOCore
import NIOHTTP1
import StandbyCore
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

/// Verifies Secure Webhook bearer tokens: RS256 only, signed by a key of the configured JWKS
/// (cached, refreshed on schedule and when an unknown key appears), with the configured issuer,
/// audience and the `ActionGroupsSecureWebhook` role.
public final class SecureWebhookVerifier: Sendable {
    public struct Rejection: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    let settings: SecureWebhookSettings
    let logger: Logger
    private let cache = Mutex<(keys: JWTKeyCollection?, loadedAt: Date?, lastForcedReload: Date?)>((nil, nil, nil))

    public init(settings: SecureWebhookSettings, logger: Logger) {
        self.settings = settings
        self.logger = logger
    }

    public func verify(bearer token: String, now: Date) async throws -> [String] {
        guard Self.algorithm(of: token) == "RS256" else {
            throw Rejection(description: "only RS256-signed tokens are accepted")
        }
        var keys = try await currentKeys(now: now, force: false)
        let claims: SecureWebhookClaims
        do {
            claims = try await keys.verify(token, as: SecureWebhookClaims.self)
        } catch let error as JWTError where error.errorType == .unknownKID {
            // Entra ID rotates keys: reload once (at most every minute) and try again.
            keys = try await currentKeys(now: now, force: true)
            do {
                claims = try await keys.verify(token, as: SecureWebhookClaims.self)
            } catch {
                throw Rejection(description: "the token is not valid: \(Self.describe(error))")
            }
        } catch {
            throw Rejection(description: "the token is not valid: \(Self.describe(error))")
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
        return "\(error)"
    }

    static func algorithm(of token: String) -> String? {
        guard let header = token.split(separator: ".", omittingEmptySubsequences: false).first else { return nil }
        var base64 = header.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        guard let data = Data(base64Encoded: base64), let json = try? JSONValue.decode(data) else { return nil }
        return json["alg"]?.stringValue
    }

    private func currentKeys(now: Date, force: Bool) async throws -> JWTKeyCollection {
        let (cached, loadedAt, lastForced) = cache.withLock { ($0.keys, $0.loadedAt, $0.lastForcedReload) }
        let fresh = loadedAt.map { now.timeIntervalSince($0) < settings.jwksRefresh } ?? false
        if let cached, fresh, !force { return cached }
        if let cached, force, let lastForced, now.timeIntervalSince(lastForced) < 60 { return cached }
        do {
            let json = Self.assumingRS256(try await Self.loadJWKS(settings.jwks))
            let keys = JWTKeyCollection()
            try await keys.add(jwksJSON: json)
            cache.withLock { state in
                state = (keys, now, force ? now : state.lastForcedReload)
            }
            return keys
        } catch {
            // Keep serving with the keys we have; without any, refuse.
            logger.warning("cannot load the Secure Webhook JWKS", metadata: ["error": .string("\(error)")])
            if let cached { return cached }
            throw Rejection(description: "the signing keys (JWKS) cannot be loaded")
        }
    }

    /// Entra ID publishes RSA keys without `alg`; Secure Webhook tokens are RS256, so say so.
    static func assumingRS256(_ jwks: String) -> String {
        guard case .object(var root)? = JSONValue.parse(jwks), case .array(let keys)? = root["keys"] else { return jwks }
        root["keys"] = .array(
            keys.map { key in
                guard case .object(var members) = key, key["kty"]?.stringValue == "RSA", key["alg"] == nil else { return key }
                members["alg"] = .string("RS256")
                return .object(members)
            })
        return JSONValue.object(root).canonicalString()
    }

    static func loadJWKS(_ location: String) async throws -> String {
        if location.hasPrefix("https://") || location.hasPrefix("http://") {
            var request = HTTPClientRequest(url: location)
            request.method = .GET
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
            guard response.status == .ok else { throw Rejection(description: "JWKS answered HTTP \(response.status.code)") }
            let body = try await response.body.collect(upTo: 1 << 20)
            return String(buffer: body)
        }
        return try String(contentsOfFile: location, encoding: .utf8)
    }

    /// Subscription IDs named by an alert's ARM IDs, lower-cased.
    public static func subscriptions(in ids: [String]) -> Set<String> {
        var found = Set<String>()
        for id in ids {
            let parts = id.lowercased().split(separator: "/")
            if let index = parts.firstIndex(of: "subscriptions"), index + 1 < parts.count {
                found.insert(String(parts[index + 1]))
            }
        }
        return found
    }
}
