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
/// Values cross from the store's views to the generated types through their shared JSON form, so
/// a view that drifted from the contract fails loudly instead of answering off-schema.
struct GeneratedAPI: APIProtocol {
    let controlPlane: ControlPlane
    let alerts: any AlertRepository
    let jobs: JobQueue
    let history: EventHistory
    let timeSource: any TimeSource

    /// A view that does not fit the contract is a bug of this server, never of the request.
    struct ContractDrift: Error, CustomStringConvertible {
        var description: String
    }

    static func bridge<T: Decodable>(_ value: some Encodable, as type: T.Type = T.self) throws -> T {
        do {
            return try JSONDecoder().decode(T.self, from: JSONEncoder().encode(value))
        } catch {
            throw ContractDrift(description: "\(type) does not accept the view: \(error)")
        }
    }

    struct Items<Item: Encodable>: Encodable {
        var items: [Item]
    }

    static func choice<T: RawRepresentable>(_ raw: String?, as type: T.Type) -> T? where T.RawValue == String {
        raw.flatMap(T.init(rawValue:))
    }

    static func leaseSeconds(_ value: Int?) throws -> TimeInterval {
        let seconds = value ?? 60
        guard (1...3600).contains(seconds) else {
            throw Problem.unprocessable("leaseSeconds must be from 1 to 3600", field: "leaseSeconds")
        }
        return TimeInterval(seconds)
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

    // MARK: Reading

    func listDeployments(_ input: Operations.listDeployments.Input) async throws -> Operations.listDeployments.Output {
        let views = try await controlPlane.deployments(now: timeSource.now())
        return .ok(.init(body: .json(try Self.bridge(Items(items: views)))))
    }

    func getDeployment(_ input: Operations.getDeployment.Input) async throws -> Operations.getDeployment.Output {
        guard let view = try await controlPlane.deployment(id: input.path.id, now: timeSource.now()) else {
            throw Problem.notFound("no deployment with id \(input.path.id)")
        }
        return .ok(.init(body: .json(try Self.bridge(view))))
    }

    func listFailureWindows(_ input: Operations.listFailureWindows.Input) async throws
        -> Operations.listFailureWindows.Output
    {
        let page = try await controlPlane.failureWindows(
            hub: input.query.hub, open: input.query.open,
            page: try QueryReader.page(limit: input.query.limit, cursor: input.query.cursor))
        return .ok(.init(body: .json(try Self.bridge(page))))
    }

    func listFailoverEvents(_ input: Operations.listFailoverEvents.Input) async throws
        -> Operations.listFailoverEvents.Output
    {
        let page = try await controlPlane.failoverEvents(
            deployment: input.query.deployment,
            page: try QueryReader.page(limit: input.query.limit, cursor: input.query.cursor))
        return .ok(.init(body: .json(try Self.bridge(page))))
    }

    func getFailoverEvent(_ input: Operations.getFailoverEvent.Input) async throws -> Operations.getFailoverEvent.Output
    {
        guard let event = try await controlPlane.failoverEvent(id: input.path.id) else {
            throw Problem.notFound("no failover event with id \(input.path.id)")
        }
        return .ok(.init(body: .json(try Self.bridge(event))))
    }

    func listCommands(_ input: Operations.listCommands.Input) async throws -> Operations.listCommands.Output {
        let page = try await controlPlane.commands(
            status: input.query.status.flatMap { CommandStatus(rawValue: $0.rawValue) },
            deployment: input.query.deployment,
            page: try QueryReader.page(limit: input.query.limit, cursor: input.query.cursor))
        return .ok(.init(body: .json(try Self.bridge(page))))
    }

    func listAlerts(_ input: Operations.listAlerts.Input) async throws -> Operations.listAlerts.Output {
        var query = AlertQuery()
        query.hub = input.query.hub
        query.deployment = input.query.deployment
        query.condition = Self.choice(input.query.condition?.rawValue, as: AlertCondition.self)
        query.status = Self.choice(input.query.status?.rawValue, as: AlertStatus.self)
        query.since = try QueryReader.date(input.query.since, field: "since")
        query.until = try QueryReader.date(input.query.until, field: "until")
        query.page = try QueryReader.page(limit: input.query.limit, cursor: input.query.cursor)
        return .ok(.init(body: .json(try Self.bridge(try await alerts.list(query)))))
    }

    func getAlert(_ input: Operations.getAlert.Input) async throws -> Operations.getAlert.Output {
        guard let alert = try await alerts.get(id: input.path.id) else {
            throw Problem.notFound("no alert with id \(input.path.id)")
        }
        return .ok(.init(body: .json(try Self.bridge(alert))))
    }

    func listJobs(_ input: Operations.listJobs.Input) async throws -> Operations.listJobs.Output {
        let page = try await jobs.jobs(
            status: Self.choice(input.query.status?.rawValue, as: JobStatus.self), hub: input.query.hub,
            page: try QueryReader.page(limit: input.query.limit, cursor: input.query.cursor))
        return .ok(.init(body: .json(try Self.bridge(page))))
    }

    func getJob(_ input: Operations.getJob.Input) async throws -> Operations.getJob.Output {
        guard let job = try await jobs.job(idOrExternalId: input.path.id) else {
            throw Problem.notFound("no job \(input.path.id)")
        }
        return .ok(.init(body: .json(try Self.bridge(job))))
    }

    func listResubmissions(_ input: Operations.listResubmissions.Input) async throws
        -> Operations.listResubmissions.Output
    {
        let page = try await jobs.resubmissions(
            status: Self.choice(input.query.status?.rawValue, as: ResubmissionStatus.self),
            page: try QueryReader.page(limit: input.query.limit, cursor: input.query.cursor))
        return .ok(.init(body: .json(try Self.bridge(page))))
    }

    func listEvents(_ input: Operations.listEvents.Input) async throws -> Operations.listEvents.Output {
        var query = EventQuery()
        query.types = input.query._type.map { $0.split(separator: ",").map(String.init) } ?? []
        query.deployment = input.query.deployment
        query.hub = input.query.hub
        query.since = try QueryReader.date(input.query.since, field: "since")
        query.until = try QueryReader.date(input.query.until, field: "until")
        query.page = try QueryReader.page(limit: input.query.limit, cursor: input.query.cursor)
        return .ok(.init(body: .json(try Self.bridge(try await history.list(query)))))
    }

    // MARK: The resubmission queue (operators and their workers)

    func claimResubmissions(_ input: Operations.claimResubmissions.Input) async throws
        -> Operations.claimResubmissions.Output
    {
        guard case .json(let body) = input.body else { throw Problem.badRequest("the body must be JSON") }
        let limit = body.limit ?? 1
        guard (1...100).contains(limit) else {
            throw Problem.unprocessable("limit must be from 1 to 100", field: "limit")
        }
        return try await jobs.claim(
            worker: try Self.text(body.worker, field: "worker", maximum: Self.maximumName), limit: limit,
            leaseSeconds: try Self.leaseSeconds(body.leaseSeconds), now: timeSource.now()
        ) { items in .ok(.init(body: .json(try Self.bridge(Items(items: items))))) }
    }

    func heartbeatResubmission(_ input: Operations.heartbeatResubmission.Input) async throws
        -> Operations.heartbeatResubmission.Output
    {
        guard case .json(let body) = input.body else { throw Problem.badRequest("the body must be JSON") }
        let item = try await jobs.heartbeat(
            id: input.path.id, worker: try Self.text(body.worker, field: "worker", maximum: Self.maximumName),
            leaseSeconds: try Self.leaseSeconds(body.leaseSeconds), now: timeSource.now())
        return .ok(.init(body: .json(try Self.bridge(item))))
    }

    func completeResubmission(_ input: Operations.completeResubmission.Input) async throws
        -> Operations.completeResubmission.Output
    {
        guard case .json(let body) = input.body else { throw Problem.badRequest("the body must be JSON") }
        let item = try await jobs.complete(
            id: input.path.id, worker: try Self.text(body.worker, field: "worker", maximum: Self.maximumName),
            newExternalId: try Self.text(body.newExternalId, field: "newExternalId", maximum: 256),
            now: timeSource.now())
        return .ok(.init(body: .json(try Self.bridge(item))))
    }

    func failResubmission(_ input: Operations.failResubmission.Input) async throws -> Operations.failResubmission.Output
    {
        guard case .json(let body) = input.body else { throw Problem.badRequest("the body must be JSON") }
        let item = try await jobs.fail(
            id: input.path.id, worker: try Self.text(body.worker, field: "worker", maximum: Self.maximumName),
            error: try Self.text(body.error, field: "error", maximum: Self.maximumDetail), now: timeSource.now())
        return .ok(.init(body: .json(try Self.bridge(item))))
    }

    func retryResubmission(_ input: Operations.retryResubmission.Input) async throws
        -> Operations.retryResubmission.Output
    {
        let token = try RequestIdentity.caller()
        var targetHub: String?
        if case .json(let body)? = input.body {
            targetHub = try Self.optionalText(body.targetHub, field: "targetHub", maximum: Self.maximumName)
        }
        let item = try await jobs.retry(
            id: input.path.id, targetHub: targetHub, actor: token.name, now: timeSource.now())
        return .ok(.init(body: .json(try Self.bridge(item))))
    }

    func cancelResubmission(_ input: Operations.cancelResubmission.Input) async throws
        -> Operations.cancelResubmission.Output
    {
        let token = try RequestIdentity.caller()
        var reason: String?
        if case .json(let body)? = input.body {
            reason = try Self.optionalText(body.reason, field: "reason", maximum: Self.maximumReason)
        }
        let item = try await jobs.cancel(id: input.path.id, actor: token.name, reason: reason, now: timeSource.now())
        return .ok(.init(body: .json(try Self.bridge(item))))
    }

    // MARK: Operators

    func operate(_ action: OperatorAction, id: String, body: Components.RequestBodies.OperatorAction) async throws
        -> OperatorOutcome
    {
        let token = try RequestIdentity.caller()
        guard case .json(let payload) = body else { throw Problem.badRequest("the body must be JSON") }
        let reason = payload.reason.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !reason.isEmpty else {
            throw Problem.unprocessable("reason is required: say why, it is recorded with your name", field: "reason")
        }
        _ = try Self.text(reason, field: "reason", maximum: Self.maximumReason)
        let hub = payload.to ?? payload.hub
        if let hub, let deployment = controlPlane.topology.deployment(id), deployment.hub(hub) == nil {
            throw Problem.unprocessable(
                "hub must be one of \(deployment.hubs.map(\.id).joined(separator: ", ")) (a hub of \(id))",
                field: payload.to != nil ? "to" : "hub")
        }
        let request = OperatorRequest(
            action: action, reason: reason, actor: token.name, force: payload.force ?? false,
            allowUnhealthyTarget: payload.allowUnhealthyTarget ?? false, hub: hub)
        return try await controlPlane.operatorAction(deploymentId: id, request: request, now: timeSource.now())
    }

    func event(_ outcome: OperatorOutcome) throws -> Components.Schemas.FailoverEvent {
        switch outcome {
        case .moved(let event): return try Self.bridge(event)
        case .updated: throw Problem.conflict("the action decided no failover")
        }
    }

    func deployment(_ outcome: OperatorOutcome, id: String) async throws -> Components.Schemas.Deployment {
        switch outcome {
        case .updated(let view): return try Self.bridge(view)
        case .moved:
            guard let view = try await controlPlane.deployment(id: id, now: timeSource.now()) else {
                throw Problem.notFound("no deployment with id \(id)")
            }
            return try Self.bridge(view)
        }
    }

    func failoverDeployment(_ input: Operations.failoverDeployment.Input) async throws
        -> Operations.failoverDeployment.Output
    {
        .ok(.init(body: .json(try event(try await operate(.failover, id: input.path.id, body: input.body)))))
    }

    func failbackDeployment(_ input: Operations.failbackDeployment.Input) async throws
        -> Operations.failbackDeployment.Output
    {
        .ok(.init(body: .json(try event(try await operate(.failback, id: input.path.id, body: input.body)))))
    }

    func pauseDeployment(_ input: Operations.pauseDeployment.Input) async throws -> Operations.pauseDeployment.Output {
        let outcome = try await operate(.pause, id: input.path.id, body: input.body)
        return .ok(.init(body: .json(try await deployment(outcome, id: input.path.id))))
    }

    func resumeDeployment(_ input: Operations.resumeDeployment.Input) async throws -> Operations.resumeDeployment.Output
    {
        let outcome = try await operate(.resume, id: input.path.id, body: input.body)
        return .ok(.init(body: .json(try await deployment(outcome, id: input.path.id))))
    }

    func acknowledgeCommand(_ input: Operations.acknowledgeCommand.Input) async throws
        -> Operations.acknowledgeCommand.Output
    {
        let token = try RequestIdentity.caller()
        guard case .json(let payload) = input.body else { throw Problem.badRequest("the body must be JSON") }
        guard let outcome = CommandAckOutcome(rawValue: payload.outcome.rawValue) else {
            throw Problem.unprocessable("outcome must be succeeded or failed", field: "outcome")
        }
        let command = try await controlPlane.acknowledge(
            commandId: input.path.id, outcome: outcome,
            detail: try Self.optionalText(payload.detail, field: "detail", maximum: Self.maximumDetail),
            actor: token.name, now: timeSource.now())
        return .ok(.init(body: .json(try Self.bridge(command))))
    }
}
