import Foundation
import Hummingbird
import StandbyCore
import StandbyStore

/// Deployments, their failure windows, failover events and the command outbox.
struct DeploymentsController {
    let controlPlane: ControlPlane
    let timeSource: any TimeSource

    struct DeploymentList: ResponseEncodable {
        var items: [DeploymentView]
    }

    var readEndpoints: RouteCollection<StandbyRequestContext> {
        let routes = RouteCollection(context: StandbyRequestContext.self)
        routes.get("deployments", use: list)
        routes.get("deployments/:id", use: show)
        routes.get("failure-windows", use: windows)
        routes.get("failover-events", use: failoverEvents)
        routes.get("failover-events/:id", use: failoverEvent)
        routes.get("commands", use: commands)
        return routes
    }

    var operatorEndpoints: RouteCollection<StandbyRequestContext> {
        let routes = RouteCollection(context: StandbyRequestContext.self)
        for action in OperatorAction.allCases {
            routes.post("deployments/:id/\(action.rawValue)") { request, context in
                try await operate(action, request: request, context: context)
            }
        }
        routes.post("commands/:id/ack", use: acknowledge)
        return routes
    }

    @Sendable func list(_ request: Request, context: StandbyRequestContext) async throws -> DeploymentList {
        DeploymentList(items: try await controlPlane.deployments(now: timeSource.now()))
    }

    @Sendable func show(_ request: Request, context: StandbyRequestContext) async throws -> DeploymentView {
        let id = try context.parameters.require("id")
        guard let view = try await controlPlane.deployment(id: id, now: timeSource.now()) else {
            throw Problem.notFound("no deployment with id \(id)")
        }
        return view
    }

    @Sendable func windows(_ request: Request, context: StandbyRequestContext) async throws -> Page<FailureWindowView> {
        let query = QueryReader(request)
        return try await controlPlane.failureWindows(hub: query.string("hub"), open: try query.bool("open"), page: try query.page())
    }

    @Sendable func failoverEvents(_ request: Request, context: StandbyRequestContext) async throws
        -> Page<FailoverEventView>
    {
        let query = QueryReader(request)
        return try await controlPlane.failoverEvents(deployment: query.string("deployment"), page: try query.page())
    }

    @Sendable func failoverEvent(_ request: Request, context: StandbyRequestContext) async throws -> FailoverEventView {
        let id = try context.parameters.require("id")
        guard let event = try await controlPlane.failoverEvent(id: id) else {
            throw Problem.notFound("no failover event with id \(id)")
        }
        return event
    }

    static let commandStatuses = ["pending", "delivered", "succeeded", "failed", "dry_run", "superseded"]

    @Sendable func commands(_ request: Request, context: StandbyRequestContext) async throws -> Page<CommandView> {
        let query = QueryReader(request)
        let status = query.string("status")
        if let status, !Self.commandStatuses.contains(status) {
            throw Problem.badRequest("status must be one of \(Self.commandStatuses.joined(separator: ", "))", field: "status")
        }
        return try await controlPlane.commands(status: status, deployment: query.string("deployment"), page: try query.page())
    }

    struct OperatorBody: Decodable {
        var reason: String?
        var force: Bool?
        var allowUnhealthyTarget: Bool?
        var hub: String?
        var to: String?
    }

    func operate(_ action: OperatorAction, request: Request, context: StandbyRequestContext) async throws -> Response {
        let id = try context.parameters.require("id")
        let body = try await request.decode(as: OperatorBody.self, context: context)
        guard let reason = body.reason?.trimmingCharacters(in: .whitespacesAndNewlines), !reason.isEmpty else {
            throw Problem.unprocessable("reason is required: say why, it is recorded with your name", field: "reason")
        }
        let operatorRequest = OperatorRequest(
            action: action, reason: reason, actor: context.actor, force: body.force ?? false,
            allowUnhealthyTarget: body.allowUnhealthyTarget ?? false, hub: body.to ?? body.hub)
        switch try await controlPlane.operatorAction(deploymentId: id, request: operatorRequest, now: timeSource.now()) {
        case .moved(let event):
            return try event.response(from: request, context: context)
        case .updated(let deployment):
            return try deployment.response(from: request, context: context)
        }
    }

    struct AckBody: Decodable {
        var outcome: String?
        var detail: String?
    }

    @Sendable func acknowledge(_ request: Request, context: StandbyRequestContext) async throws -> CommandView {
        let id = try context.parameters.require("id")
        let body = try await request.decode(as: AckBody.self, context: context)
        guard let outcomeText = body.outcome, let outcome = CommandAckOutcome(rawValue: outcomeText) else {
            throw Problem.unprocessable("outcome must be succeeded or failed", field: "outcome")
        }
        return try await controlPlane.acknowledge(
            commandId: id, outcome: outcome, detail: body.detail, actor: context.actor, now: timeSource.now())
    }
}

extension DeploymentView: ResponseEncodable {}
extension FailoverEventView: ResponseEncodable {}
extension CommandView: ResponseEncodable {}
extension FailureWindowView: ResponseEncodable {}
