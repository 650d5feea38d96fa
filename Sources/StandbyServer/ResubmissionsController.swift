import Foundation
import StandbyApp
import StandbyPrimitives

// `/v1/resubmissions`: the leased queue of interrupted jobs (workers claim, heartbeat, complete,
// fail; operators retry and cancel), on the generated server.
extension GeneratedAPI {
    static func leaseSeconds(_ value: Int?) throws -> TimeInterval {
        let seconds = value ?? 60
        guard (1...3600).contains(seconds) else {
            throw Problem.unprocessable("leaseSeconds must be from 1 to 3600", field: "leaseSeconds")
        }
        return TimeInterval(seconds)
    }

    func listResubmissions(_ input: Operations.listResubmissions.Input) async throws
        -> Operations.listResubmissions.Output
    {
        let page = try await jobs.resubmissions(
            status: Self.choice(input.query.status?.rawValue, as: ResubmissionStatus.self),
            page: try QueryReader.page(limit: input.query.limit, cursor: input.query.cursor))
        return .ok(
            .init(body: .json(.init(items: try page.items.map(Components.Schemas.Resubmission.init), next: page.next))))
    }

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
        ) { items in .ok(.init(body: .json(.init(items: try items.map(Components.Schemas.Resubmission.init))))) }
    }

    func heartbeatResubmission(_ input: Operations.heartbeatResubmission.Input) async throws
        -> Operations.heartbeatResubmission.Output
    {
        guard case .json(let body) = input.body else { throw Problem.badRequest("the body must be JSON") }
        let item = try await jobs.heartbeat(
            id: input.path.id, worker: try Self.text(body.worker, field: "worker", maximum: Self.maximumName),
            leaseSeconds: try Self.leaseSeconds(body.leaseSeconds), now: timeSource.now())
        return .ok(.init(body: .json(try Components.Schemas.Resubmission(item))))
    }

    func completeResubmission(_ input: Operations.completeResubmission.Input) async throws
        -> Operations.completeResubmission.Output
    {
        guard case .json(let body) = input.body else { throw Problem.badRequest("the body must be JSON") }
        let item = try await jobs.complete(
            id: input.path.id, worker: try Self.text(body.worker, field: "worker", maximum: Self.maximumName),
            newExternalId: try Self.text(body.newExternalId, field: "newExternalId", maximum: 256),
            now: timeSource.now())
        return .ok(.init(body: .json(try Components.Schemas.Resubmission(item))))
    }

    func failResubmission(_ input: Operations.failResubmission.Input) async throws -> Operations.failResubmission.Output
    {
        guard case .json(let body) = input.body else { throw Problem.badRequest("the body must be JSON") }
        let item = try await jobs.fail(
            id: input.path.id, worker: try Self.text(body.worker, field: "worker", maximum: Self.maximumName),
            error: try Self.text(body.error, field: "error", maximum: Self.maximumDetail), now: timeSource.now())
        return .ok(.init(body: .json(try Components.Schemas.Resubmission(item))))
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
        return .ok(.init(body: .json(try Components.Schemas.Resubmission(item))))
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
        return .ok(.init(body: .json(try Components.Schemas.Resubmission(item))))
    }
}
