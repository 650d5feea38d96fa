import Foundation
import StandbyApp
import StandbyCore
import StandbyPrimitives

// `/v1/alerts`: the alerts derived from webhook deliveries, with their raw bodies, on the generated
// server.
extension GeneratedAPI {
    func listAlerts(_ input: Operations.listAlerts.Input) async throws -> Operations.listAlerts.Output {
        var query = AlertQuery()
        query.hub = input.query.hub
        query.deployment = input.query.deployment
        query.condition = Self.choice(input.query.condition?.rawValue, as: AlertCondition.self)
        query.status = Self.choice(input.query.status?.rawValue, as: AlertStatus.self)
        query.since = try QueryReader.date(input.query.since, field: "since")
        query.until = try QueryReader.date(input.query.until, field: "until")
        query.page = try QueryReader.page(limit: input.query.limit, cursor: input.query.cursor)
        let page = try await alerts.list(query)
        return .ok(.init(body: .json(.init(items: try page.items.map(Components.Schemas.Alert.init), next: page.next))))
    }

    func getAlert(_ input: Operations.getAlert.Input) async throws -> Operations.getAlert.Output {
        guard let alert = try await alerts.get(id: input.path.id) else {
            throw Problem.notFound("no alert with id \(input.path.id)")
        }
        return .ok(.init(body: .json(try Components.Schemas.Alert(alert))))
    }
}
