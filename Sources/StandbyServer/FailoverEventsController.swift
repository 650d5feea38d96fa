import Foundation
import StandbyApp
import StandbyPrimitives

// `/v1/failover-events` and `/v1/failure-windows`: what the engine decided and the windows the
// tracker kept, on the generated server.
extension GeneratedAPI {
    func listFailureWindows(_ input: Operations.listFailureWindows.Input) async throws
        -> Operations.listFailureWindows.Output
    {
        let page = try await controlPlane.failureWindows(
            hub: input.query.hub, open: input.query.open,
            page: try QueryReader.page(limit: input.query.limit, cursor: input.query.cursor))
        return .ok(
            .init(body: .json(.init(items: page.items.map(Components.Schemas.FailureWindow.init), next: page.next))))
    }

    func listFailoverEvents(_ input: Operations.listFailoverEvents.Input) async throws
        -> Operations.listFailoverEvents.Output
    {
        let page = try await controlPlane.failoverEvents(
            deployment: input.query.deployment,
            page: try QueryReader.page(limit: input.query.limit, cursor: input.query.cursor))
        return .ok(
            .init(body: .json(.init(items: try page.items.map(Components.Schemas.FailoverEvent.init), next: page.next)))
        )
    }

    func getFailoverEvent(_ input: Operations.getFailoverEvent.Input) async throws -> Operations.getFailoverEvent.Output
    {
        guard let event = try await controlPlane.failoverEvent(id: input.path.id) else {
            throw Problem.notFound("no failover event with id \(input.path.id)")
        }
        return .ok(.init(body: .json(try Components.Schemas.FailoverEvent(event))))
    }
}
