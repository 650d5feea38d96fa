import Foundation
import StandbyApp
import StandbyCore
import StandbyPrimitives

// `/v1/deployments`: the deployments as they stand, and the operator actions on them (failover,
// failback, pause, resume), on the generated server.
extension GeneratedAPI {
    func listDeployments(_ input: Operations.listDeployments.Input) async throws -> Operations.listDeployments.Output {
        let views = try await controlPlane.deployments(now: timeSource.now())
        return .ok(.init(body: .json(.init(items: try views.map(Components.Schemas.Deployment.init)))))
    }

    func getDeployment(_ input: Operations.getDeployment.Input) async throws -> Operations.getDeployment.Output {
        guard let view = try await controlPlane.deployment(id: input.path.id, now: timeSource.now()) else {
            throw Problem.notFound("no deployment with id \(input.path.id)")
        }
        return .ok(.init(body: .json(try Components.Schemas.Deployment(view))))
    }

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
        let until = try payload.until.map { text -> Date in
            guard action == .pause else {
                throw Problem.unprocessable("until applies to pause only", field: "until")
            }
            guard let date = Timestamp.parse(text) else {
                throw Problem.unprocessable(
                    "until must be an ISO-8601 time such as 2026-12-05T02:00:00Z", field: "until")
            }
            return date
        }
        let request = OperatorRequest(
            action: action, reason: reason, actor: token.name, force: payload.force ?? false,
            allowUnhealthyTarget: payload.allowUnhealthyTarget ?? false, hub: hub, until: until)
        return try await controlPlane.operatorAction(deploymentId: id, request: request, now: timeSource.now())
    }

    func event(_ outcome: OperatorOutcome) throws -> Components.Schemas.FailoverEvent {
        switch outcome {
        case .moved(let event): return try Components.Schemas.FailoverEvent(event)
        case .updated: throw Problem.conflict("the action decided no failover")
        }
    }

    func deployment(_ outcome: OperatorOutcome, id: String) async throws -> Components.Schemas.Deployment {
        switch outcome {
        case .updated(let view): return try Components.Schemas.Deployment(view)
        case .moved:
            guard let view = try await controlPlane.deployment(id: id, now: timeSource.now()) else {
                throw Problem.notFound("no deployment with id \(id)")
            }
            return try Components.Schemas.Deployment(view)
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
}
