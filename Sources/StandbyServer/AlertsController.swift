import Foundation
import Hummingbird
import StandbyCore
import StandbyStore

/// `GET /v1/alerts` and `GET /v1/alerts/{id}`.
struct AlertsController {
    let alerts: any AlertRepository

    var endpoints: RouteCollection<StandbyRequestContext> {
        let routes = RouteCollection(context: StandbyRequestContext.self)
        routes.get(use: list)
        routes.get(":id", use: show)
        return routes
    }

    @Sendable func list(_ request: Request, context: StandbyRequestContext) async throws -> Page<AlertView> {
        let query = QueryReader(request)
        var filter = AlertQuery()
        filter.hub = query.string("hub")
        filter.deployment = query.string("deployment")
        filter.condition = try query.choice("condition", as: AlertCondition.self)
        filter.status = try query.choice("status", as: AlertStatus.self)
        filter.since = try query.date("since")
        filter.until = try query.date("until")
        filter.page = try query.page()
        return try await alerts.list(filter)
    }

    @Sendable func show(_ request: Request, context: StandbyRequestContext) async throws -> AlertView {
        let id = try context.parameters.require("id")
        guard let alert = try await alerts.get(id: id) else { throw Problem.notFound("no alert with id \(id)") }
        return alert
    }
}

extension AlertView: ResponseEncodable {}
