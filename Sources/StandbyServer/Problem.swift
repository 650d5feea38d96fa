import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import OpenAPIRuntime
import StandbyApp
import StandbyCore
import StandbyPrimitives

/// An RFC 9457 problem: every error Standby answers with is one of these, rendered here and only here.
public struct Problem: HTTPResponseError, Sendable {
    public var status: HTTPResponse.Status
    public var slug: String
    public var title: String
    public var detail: String?
    public var headers: HTTPFields
    public var extensions: [String: JSONValue]

    public init(
        _ status: HTTPResponse.Status, _ slug: String, title: String, detail: String? = nil,
        headers: HTTPFields = [:], extensions: [String: JSONValue] = [:]
    ) {
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.headers = headers
        self.extensions = extensions
    }

    public var type: String { "https://standby.dev/problems/\(slug)" }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var body = extensions
        body["type"] = .string(type)
        body["title"] = .string(title)
        body["status"] = .number(Double(status.code))
        if let detail { body["detail"] = .string(detail) }
        body["instance"] = .string(request.uri.path)
        var headers = headers
        // Refused before its body was read: close rather than drain what the client still sends.
        if status == .unauthorized || status == .contentTooLarge { headers[.connection] = "close" }
        return try JSONResponse(
            status: status, headers: headers, contentType: "application/problem+json", body: .object(body)
        ).response(from: request, context: context)
    }

    // MARK: The problems Standby speaks

    public static func badRequest(_ detail: String, field: String? = nil) -> Problem {
        Problem(
            .badRequest, "bad-request", title: "The request is not valid", detail: detail,
            extensions: field.map { ["field": .string($0)] } ?? [:])
    }

    public static func unprocessable(_ detail: String, field: String? = nil) -> Problem {
        Problem(
            .unprocessableContent, "invalid-content", title: "The request content is not acceptable", detail: detail,
            extensions: field.map { ["field": .string($0)] } ?? [:])
    }

    public static func unauthorized(_ detail: String, scheme: String = "Bearer") -> Problem {
        Problem(
            .unauthorized, "unauthorized", title: "Authentication is required", detail: detail,
            headers: [.wwwAuthenticate: "\(scheme) realm=\"standby\""])
    }

    public static func forbidden(_ detail: String) -> Problem {
        Problem(.forbidden, "forbidden", title: "The token lacks the role this needs", detail: detail)
    }

    public static func notFound(_ detail: String) -> Problem {
        Problem(.notFound, "not-found", title: "Not found", detail: detail)
    }

    public static func conflict(_ detail: String) -> Problem {
        Problem(.conflict, "conflict", title: "The request conflicts with the current state", detail: detail)
    }

    public static func unavailable(_ detail: String, retryAfterSeconds: Int = 5) -> Problem {
        Problem(
            .serviceUnavailable, "storage-unavailable", title: "Storage is unavailable; retry later", detail: detail,
            headers: [.retryAfter: String(retryAfterSeconds)])
    }
}

/// Turns every error thrown below it into a problem response, and logs the ones that are bugs.
struct ProblemMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        do {
            return try await next(request, context)
        } catch {
            let problem = Self.problem(for: error, context: context)
            return try problem.response(from: request, context: context)
        }
    }

    static func problem(for error: any Error, context: Context) -> Problem {
        switch error {
        case let problem as Problem:
            return problem
        case let error as ServerError:
            // The generated server wraps what handlers throw; anything of ours inside is mapped as
            // usual, anything else is the request failing to match the contract.
            switch error.underlyingError {
            case is Problem, is StoreError, is ContractDrift, is NIOTooManyBytesError:
                return problem(for: error.underlyingError, context: context)
            default:
                return .badRequest("the request does not match the API contract: \(error.causeDescription)")
            }
        case let error as StoreError:
            switch error {
            case .unavailable(let reason):
                context.logger.warning("storage unavailable", metadata: ["reason": .string(reason)])
                return .unavailable(reason)
            case .newerSchema: return .unavailable(error.description)
            case .notFound(let what): return .notFound("\(what) not found")
            case .conflict(let what): return .conflict(what)
            case .keyRequired: return .unavailable(error.description)
            // Only singleton work runs fenced; should a request ever meet it, another instance leads.
            case .fenced: return .unavailable(error.description)
            }
        case is NIOTooManyBytesError:
            return Problem(
                .contentTooLarge, "content-too-large", title: "The request body is too large",
                detail: "the body exceeds the configured server.maxBodyBytes")
        case let error as HTTPError:
            return Problem(
                error.status, "http-\(error.status.code)", title: error.status.reasonPhrase, detail: error.body,
                headers: error.headers)
        case is DecodingError:
            return .badRequest("the body does not have the expected JSON shape: \(Self.describe(error))")
        case let error as any HTTPResponseError:
            return Problem(error.status, "http-\(error.status.code)", title: error.status.reasonPhrase)
        default:
            // The type and a bounded message: an error can carry a whole view or payload.
            context.logger.error(
                "unexpected error",
                metadata: [
                    "error_type": .string(String(reflecting: type(of: error))),
                    "error": .string(LogText.truncated(String(describing: error))),
                ])
            return Problem(
                .internalServerError, "internal", title: "Internal error",
                detail: "an unexpected error occurred; it was logged")
        }
    }

    static func describe(_ error: any Error) -> String {
        guard let error = error as? DecodingError else { return "\(error)" }
        func path(_ codingPath: [any CodingKey]) -> String {
            codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
                .trimmingCharacters(in: CharacterSet(charactersIn: "."))
        }
        switch error {
        case .keyNotFound(let key, let context):
            return "missing field \(path(context.codingPath + [key]))"
        // The field's path, never the decoder's own text: it names Swift types and internals.
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            return "\(path(context.codingPath)) has the wrong type or is null"
        case .dataCorrupted(let context):
            return context.codingPath.isEmpty ? "not valid JSON" : "\(path(context.codingPath)) is not valid"
        @unknown default:
            return "not the expected shape"
        }
    }
}
