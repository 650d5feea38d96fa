import Foundation
import Hummingbird
import NIOCore
import ServiceLifecycle
import StandbyApp
import StandbyCore
import StandbyPrimitives

/// Registering and updating training jobs (`POST /v1/jobs`, `PATCH /v1/jobs/{id}`); reading them
/// and the resubmission queue are served by the generated API.
struct JobsController {
    static let maximumSpecBytes = 256 * 1024
    static let maximumLease: TimeInterval = 3600

    let jobs: JobQueue
    let topology: Topology
    let timeSource: any TimeSource

    var registrationEndpoints: RouteCollection<StandbyRequestContext> {
        let routes = RouteCollection(context: StandbyRequestContext.self)
        routes.post("jobs", use: register)
        routes.patch("jobs/:id", use: update)
        return routes
    }

    // MARK: Jobs

    @Sendable func register(_ request: Request, context: StandbyRequestContext) async throws -> Response {
        let body = try await JSONBody(request, limit: Self.maximumSpecBytes + 64 * 1024)
        let externalId = try body.string("externalId", maximum: 256)
        let hubId = try body.string("hub", maximum: 200)
        guard let (deployment, hub) = topology.hub(hubId) else {
            throw Problem.unprocessable("unknown hub \"\(hubId)\"", field: "hub")
        }
        guard let spec = body.document["spec"], spec != .null else {
            throw Problem.unprocessable("spec is required (any JSON value)", field: "spec")
        }
        guard spec.canonicalData().count <= Self.maximumSpecBytes else {
            throw Problem.unprocessable("spec is larger than \(Self.maximumSpecBytes / 1024) KiB", field: "spec")
        }
        let status =
            try body.optionalString("status").map { text -> JobStatus in
                guard let status = JobStatus(rawValue: text), status != .interrupted else {
                    throw Problem.unprocessable(
                        "status must be running, completed, failed or cancelled", field: "status")
                }
                return status
            } ?? .running
        let priority = try body.optionalInt("priority") ?? 0
        let submittedAt = try body.optionalString("submittedAt").map { text -> Date in
            guard let date = Timestamp.parse(text) else {
                throw Problem.unprocessable("submittedAt must be an ISO-8601 timestamp", field: "submittedAt")
            }
            return date
        }
        let (job, created) = try await jobs.register(
            JobRegistration(
                externalId: externalId, deploymentId: deployment.id, hubId: hub.id, spec: spec, status: status,
                priority: priority, submittedAt: submittedAt),
            actor: context.actor, now: timeSource.now())
        var response = try job.response(from: request, context: context)
        response.status = created ? .created : .ok
        return response
    }

    @Sendable func update(_ request: Request, context: StandbyRequestContext) async throws -> JobView {
        let id = try context.parameters.require("id")
        let body = try await JSONBody(request, limit: 16 * 1024)
        let text = try body.string("status", maximum: 20)
        guard let status = JobStatus(rawValue: text) else {
            throw Problem.unprocessable(
                "status must be one of \(JobStatus.allCases.map(\.rawValue).joined(separator: ", "))", field: "status")
        }
        return try await jobs.updateJob(idOrExternalId: id, to: status, actor: context.actor, now: timeSource.now())
    }
}

/// A JSON object body read with field-precise problems.
struct JSONBody {
    let document: JSONValue

    init(_ request: Request, limit: Int, allowEmpty: Bool = false) async throws {
        let buffer = try await request.body.collect(upTo: limit)
        if buffer.readableBytes == 0, allowEmpty {
            document = .object([:])
            return
        }
        let value: JSONValue
        do {
            value = try JSONValue.decode(Data(buffer.readableBytesView))
        } catch {
            // The parser's reason names a byte offset and a rule (depth, syntax), nothing else.
            throw Problem.badRequest("the body is not valid JSON: \(error)")
        }
        guard value.objectValue != nil else { throw Problem.badRequest("the body must be a JSON object") }
        document = value
    }

    func string(_ key: String, maximum: Int) throws -> String {
        guard let value = try optionalString(key) else { throw Problem.unprocessable("\(key) is required", field: key) }
        guard value.count <= maximum else {
            throw Problem.unprocessable("\(key) is longer than \(maximum) characters", field: key)
        }
        return value
    }

    func optionalString(_ key: String) throws -> String? {
        guard let value = document.objectValue?[key], value != .null else { return nil }
        guard case .string(let text) = value, !text.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw Problem.unprocessable("\(key) must be a non-empty string", field: key)
        }
        return text
    }

    func optionalInt(_ key: String) throws -> Int? {
        guard let value = document.objectValue?[key], value != .null else { return nil }
        guard case .number(let number) = value, number == number.rounded(), abs(number) < 1e9 else {
            throw Problem.unprocessable("\(key) must be a whole number", field: key)
        }
        return Int(number)
    }
}

extension JobView: ResponseEncodable {}

extension GeneratedAPI {
    func listJobs(_ input: Operations.listJobs.Input) async throws -> Operations.listJobs.Output {
        let page = try await jobs.jobs(
            status: Self.choice(input.query.status?.rawValue, as: JobStatus.self), hub: input.query.hub,
            page: try QueryReader.page(limit: input.query.limit, cursor: input.query.cursor))
        return .ok(.init(body: .json(.init(items: try page.items.map(Components.Schemas.Job.init), next: page.next))))
    }

    func getJob(_ input: Operations.getJob.Input) async throws -> Operations.getJob.Output {
        guard let job = try await jobs.job(idOrExternalId: input.path.id) else {
            throw Problem.notFound("no job \(input.path.id)")
        }
        return .ok(.init(body: .json(try Components.Schemas.Job(job))))
    }
}
