import Foundation
import Hummingbird
import ServiceLifecycle
import NIOCore
import StandbyCore
import StandbyStore

/// Training jobs (`/v1/jobs`) and the resubmission queue (`/v1/resubmissions`).
struct JobsController {
    static let maximumSpecBytes = 256 * 1024
    static let maximumLease: TimeInterval = 3600

    let jobs: JobQueue
    let topology: Topology
    let timeSource: any TimeSource

    var readEndpoints: RouteCollection<StandbyRequestContext> {
        let routes = RouteCollection(context: StandbyRequestContext.self)
        routes.get("jobs", use: list)
        routes.get("jobs/:id", use: show)
        routes.get("resubmissions", use: resubmissions)
        return routes
    }

    var registrationEndpoints: RouteCollection<StandbyRequestContext> {
        let routes = RouteCollection(context: StandbyRequestContext.self)
        routes.post("jobs", use: register)
        routes.patch("jobs/:id", use: update)
        return routes
    }

    var queueEndpoints: RouteCollection<StandbyRequestContext> {
        let routes = RouteCollection(context: StandbyRequestContext.self)
        routes.post("resubmissions/claim", use: claim)
        routes.post("resubmissions/:id/heartbeat", use: heartbeat)
        routes.post("resubmissions/:id/complete", use: complete)
        routes.post("resubmissions/:id/fail", use: fail)
        routes.post("resubmissions/:id/retry", use: retry)
        routes.post("resubmissions/:id/cancel", use: cancel)
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
        let status = try body.optionalString("status").map { text -> JobStatus in
            guard let status = JobStatus(rawValue: text), status != .interrupted else {
                throw Problem.unprocessable("status must be running, completed, failed or cancelled", field: "status")
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
            throw Problem.unprocessable("status must be one of \(JobStatus.allCases.map(\.rawValue).joined(separator: ", "))", field: "status")
        }
        return try await jobs.updateJob(idOrExternalId: id, to: status, actor: context.actor, now: timeSource.now())
    }

    @Sendable func list(_ request: Request, context: StandbyRequestContext) async throws -> Page<JobView> {
        let query = QueryReader(request)
        return try await jobs.jobs(
            status: try query.choice("status", as: JobStatus.self), hub: query.string("hub"), page: try query.page())
    }

    @Sendable func show(_ request: Request, context: StandbyRequestContext) async throws -> JobView {
        let id = try context.parameters.require("id")
        guard let job = try await jobs.job(idOrExternalId: id) else { throw Problem.notFound("no job \(id)") }
        return job
    }

    // MARK: Queue

    struct Claimed: ResponseEncodable {
        var items: [ResubmissionView]
    }

    @Sendable func claim(_ request: Request, context: StandbyRequestContext) async throws -> Claimed {
        let body = try await JSONBody(request, limit: 16 * 1024)
        let worker = try body.string("worker", maximum: 200)
        let limit = try body.optionalInt("limit") ?? 1
        guard (1...100).contains(limit) else { throw Problem.unprocessable("limit must be from 1 to 100", field: "limit") }
        let lease = try leaseSeconds(body)
        return Claimed(items: try await jobs.claim(worker: worker, limit: limit, leaseSeconds: lease, now: timeSource.now()))
    }

    private func leaseSeconds(_ body: JSONBody) throws -> TimeInterval {
        let seconds = try body.optionalInt("leaseSeconds") ?? 60
        guard (1...Int(Self.maximumLease)).contains(seconds) else {
            throw Problem.unprocessable("leaseSeconds must be from 1 to \(Int(Self.maximumLease))", field: "leaseSeconds")
        }
        return TimeInterval(seconds)
    }

    @Sendable func heartbeat(_ request: Request, context: StandbyRequestContext) async throws -> ResubmissionView {
        let id = try context.parameters.require("id")
        let body = try await JSONBody(request, limit: 16 * 1024)
        return try await jobs.heartbeat(
            id: id, worker: try body.string("worker", maximum: 200), leaseSeconds: try leaseSeconds(body),
            now: timeSource.now())
    }

    @Sendable func complete(_ request: Request, context: StandbyRequestContext) async throws -> ResubmissionView {
        let id = try context.parameters.require("id")
        let body = try await JSONBody(request, limit: 16 * 1024)
        return try await jobs.complete(
            id: id, worker: try body.string("worker", maximum: 200),
            newExternalId: try body.string("newExternalId", maximum: 256), now: timeSource.now())
    }

    @Sendable func fail(_ request: Request, context: StandbyRequestContext) async throws -> ResubmissionView {
        let id = try context.parameters.require("id")
        let body = try await JSONBody(request, limit: 64 * 1024)
        return try await jobs.fail(
            id: id, worker: try body.string("worker", maximum: 200), error: try body.string("error", maximum: 8000),
            now: timeSource.now())
    }

    @Sendable func retry(_ request: Request, context: StandbyRequestContext) async throws -> ResubmissionView {
        let id = try context.parameters.require("id")
        let body = try await JSONBody(request, limit: 16 * 1024, allowEmpty: true)
        return try await jobs.retry(
            id: id, targetHub: try body.optionalString("targetHub"), actor: context.actor, now: timeSource.now())
    }

    @Sendable func cancel(_ request: Request, context: StandbyRequestContext) async throws -> ResubmissionView {
        let id = try context.parameters.require("id")
        let body = try await JSONBody(request, limit: 16 * 1024, allowEmpty: true)
        return try await jobs.cancel(id: id, actor: context.actor, reason: try body.optionalString("reason"), now: timeSource.now())
    }

    @Sendable func resubmissions(_ request: Request, context: StandbyRequestContext) async throws -> Page<ResubmissionView> {
        let query = QueryReader(request)
        return try await jobs.resubmissions(status: try query.choice("status", as: ResubmissionStatus.self), page: try query.page())
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
        guard let value = try? JSONValue.decode(Data(buffer.readableBytesView)), value.objectValue != nil else {
            throw Problem.badRequest("the body must be a JSON object")
        }
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
extension ResubmissionView: ResponseEncodable {}

/// Returns expired leases to the queue even when no worker is claiming.
public struct LeaseReaper: Service {
    let jobs: JobQueue
    let timeSource: any TimeSource
    let interval: Duration

    public init(jobs: JobQueue, timeSource: any TimeSource, interval: Duration = .seconds(5)) {
        self.jobs = jobs
        self.timeSource = timeSource
        self.interval = interval
    }

    public func run() async throws {
        await repeatUntilShutdown(every: interval) {
            _ = try? await jobs.reapExpiredLeases(now: timeSource.now())
        }
    }
}
