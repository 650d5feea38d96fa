import Crypto
import CryptoExtras
import Foundation
import GRDB
import HTTPTypes
import HummingbirdTesting
import JWTKit
import NIOCore
import StandbyCore
import StandbyPrimitives
import StandbyTestSupport
import Testing

struct TestClaims: JWTPayload {
    var exp: ExpirationClaim
    var iss: IssuerClaim
    var aud: AudienceClaim
    var roles: [String]?
    var tid: String?
    func verify(using algorithm: some JWTAlgorithm) async throws {}
}

/// Signs tokens as Entra ID would for Azure Monitor's Secure Webhook, with keys made by the test.
struct TokenFactory {
    static let tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
    let keys = JWTKeyCollection()
    let strangerKeys = JWTKeyCollection()
    let jwks: String

    init() async throws {
        let trusted = try Insecure.RSA.PrivateKey(backing: _RSA.Signing.PrivateKey(keySize: .bits2048))
        let stranger = try Insecure.RSA.PrivateKey(backing: _RSA.Signing.PrivateKey(keySize: .bits2048))
        await keys.add(rsa: trusted, digestAlgorithm: .sha256, kid: "key-1")
        await strangerKeys.add(rsa: stranger, digestAlgorithm: .sha256, kid: "key-1")
        let (modulus, exponent) = try trusted.publicKey.getKeyPrimitives()
        func base64url(_ data: Data) -> String {
            data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
                .replacingOccurrences(of: "=", with: "")
        }
        // As Entra ID publishes them: no "alg".
        jwks =
            #"{"keys":[{"kty":"RSA","use":"sig","kid":"key-1","n":"\#(base64url(modulus))","e":"\#(base64url(exponent))"}]}"#
    }

    func token(
        issuer: String = "https://sts.windows.net/\(TokenFactory.tenant)/", audience: String = "api://standby",
        roles: [String]? = ["ActionGroupsSecureWebhook"], expires: Date = Date().addingTimeInterval(600),
        signedByStranger: Bool = false, tenant: String? = TokenFactory.tenant
    ) async throws -> String {
        let claims = TestClaims(
            exp: .init(value: expires), iss: .init(value: issuer), aud: .init(value: [audience]), roles: roles,
            tid: tenant)
        return try await (signedByStranger ? strangerKeys : keys).sign(claims, kid: "key-1")
    }
}

@Suite("Azure Secure Webhook")
struct SecureWebhookTests {
    /// A Standby whose Secure Webhook trusts `jwks`, written into its own folder.
    func standby(jwks: String, allowedSubscriptions: [String] = []) throws -> TestStandby {
        var standby = TestStandby()
        let jwksPath = standby.folder.path("jwks.json")
        try jwks.write(toFile: jwksPath, atomically: true, encoding: .utf8)
        let allow =
            allowedSubscriptions.isEmpty
            ? "" : ", allowedSubscriptions: [\(allowedSubscriptions.joined(separator: ", "))]"
        standby.webhookTokensYAML = """
            ["${WEBHOOK_TOKEN}"]
              secureWebhook: { tenantId: \(TokenFactory.tenant), audience: "api://standby", jwks: "\(jwksPath)"\(allow) }
            """
        return standby
    }

    func post(_ client: any TestClientProtocol, bearer: String, body: Data) async throws -> TestResponse {
        try await client.execute(
            uri: "/webhooks/azure-monitor", method: .post,
            headers: [.authorization: "Bearer \(bearer)", .contentType: "application/json"],
            body: ByteBuffer(bytes: body))
    }

    @Test("a valid token is accepted; expired, wrong audience or issuer, missing role, bad signature → 401")
    func tokens() async throws {
        let factory = try await TokenFactory()
        let standby = try standby(jwks: factory.jwks)
        let body = try Fixtures.data("test-action-metric-static.json")
        try await standby.run { client, _ in
            let first = try await post(client, bearer: try await factory.token(), body: body)
            #expect(first.status == .ok, "\(first.text)")
            let v2 = try await factory.token(issuer: "https://login.microsoftonline.com/\(TokenFactory.tenant)/v2.0")
            #expect(try await post(client, bearer: v2, body: body).status == .ok)
            let rejected: [(String, String)] = [
                ("expired", try await factory.token(expires: Date().addingTimeInterval(-60))),
                ("wrong audience", try await factory.token(audience: "api://someone-else")),
                ("wrong issuer", try await factory.token(issuer: "https://sts.windows.net/other-tenant/")),
                ("missing role", try await factory.token(roles: ["Reader"])),
                ("no roles", try await factory.token(roles: nil)),
                ("bad signature", try await factory.token(signedByStranger: true)),
                ("other tenant", try await factory.token(tenant: "00000000-0000-0000-0000-00000000beef")),
                ("no tenant", try await factory.token(tenant: nil)),
                ("garbage", "not.a.jwt"),
            ]
            for (name, token) in rejected {
                let response = try await post(client, bearer: token, body: body)
                #expect(response.status == .unauthorized, "\(name)")
                #expect(response.headers[.contentType] == "application/problem+json", "\(name)")
            }
            // ?token= keeps working beside it.
            #expect(try await client.postWebhook(body).status == .ok)
        }
        let stored = try await standby.openDatabase().read { db in
            try Int.fetchOne(db, sql: "SELECT count(*) FROM deliveries")
        }
        #expect(stored == 3)
    }

    @Test("an allow-list of subscriptions refuses alerts from others")
    func subscriptionAllowList() async throws {
        let factory = try await TokenFactory()
        let configured = try standby(jwks: factory.jwks, allowedSubscriptions: ["11111111-1111-1111-1111-111111111111"])
        try await configured.live { client, _ in
            let token = try await factory.token()
            #expect(
                try await post(client, bearer: token, body: try Fixtures.data("test-action-metric-static.json")).status
                    == .ok)
            let other = try await post(client, bearer: token, body: try Fixtures.data("legacy-metric-static.json"))
            #expect(other.status == .forbidden)
        }
    }
}
