import Foundation
import HTTPTypes
import Hummingbird
import OpenAPIRuntime
import StandbyApp
import StandbyCore
import StandbyPrimitives
import StandbyStore

/// Who called, for handlers that the OpenAPI transport invokes without Hummingbird's context.
enum RequestIdentity {
    @TaskLocal static var current: APIToken?

    /// The caller `IdentityMiddleware` authenticated and authorised for this route: handlers only
    /// read it (for the actor they record), they never check roles again.
    static func caller() throws -> APIToken {
        guard let token = current else {
            throw Problem.unauthorized("send an API token as Authorization: Bearer <token>")
        }
        return token
    }
}

/// Authenticates the caller and checks the role the matched route needs before the generated code
/// reads the request (authorization comes before validation), then makes the token the task's
/// `RequestIdentity` for the handler.
struct IdentityMiddleware: RouterMiddleware {
    typealias Context = StandbyRequestContext
    let authenticator: Authenticator

    /// Reading needs `reader`; everything else on the generated server is an operator's.
    static func role(method: HTTPRequest.Method, path: String?) -> Role {
        method == .get ? .reader : .operator
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        let role = Self.role(method: request.method, path: context.endpointPath)
        return try await APIAuthMiddleware(authenticator: authenticator, role: role).handle(request, context: context) {
            request, context in
            try await RequestIdentity.$current.withValue(context.identity) { try await next(request, context) }
        }
    }
}

/// The deployment read routes and the operator routes, implemented on the types and server stubs
/// that swift-openapi-generator made from openapi/standby.yaml (Sources/StandbyServer/Generated).
/// The application layer's read models are filled into the generated types member by member
/// (`APIRepresentations.swift`).
struct GeneratedAPI: APIProtocol {
    let store: any ControlStore
    let instance: InstanceIdentity
    let controlPlane: ControlPlane

    let alerts: any AlertRepository

    let jobs: JobQueue

    let history: any HistoryStore

    let timeSource: any TimeSource

    static func choice<T: RawRepresentable>(_ raw: String?, as type: T.Type) -> T? where T.RawValue == String {
        raw.flatMap(T.init(rawValue:))
    }

    /// Bounds of the free text a request may store (it is served again in every listing).
    static let maximumName = 200

    static let maximumReason = 2000

    static let maximumDetail = 8000

    static func optionalText(_ value: String?, field: String, maximum: Int) throws -> String? {
        guard let value else { return nil }
        guard value.count <= maximum else {
            throw Problem.unprocessable("\(field) must be at most \(maximum) characters", field: field)
        }
        return value
    }

    static func text(_ value: String, field: String, maximum: Int) throws -> String {
        guard !value.trimmingCharacters(in: .whitespaces).isEmpty, value.count <= maximum else {
            throw Problem.unprocessable(
                "\(field) must be a non-empty string of at most \(maximum) characters", field: field)
        }
        return value
    }
}
