import Foundation
import StandbyApp
import StandbyPrimitives

// `/v1/commands`: the outbox the application layer pulls and acknowledges, on the generated server.
extension GeneratedAPI {
    func listCommands(_ input: Operations.listCommands.Input) async throws -> Operations.listCommands.Output {
        let page = try await controlPlane.commands(
            status: input.query.status.flatMap { CommandStatus(rawValue: $0.rawValue) },
            deployment: input.query.deployment,
            page: try QueryReader.page(limit: input.query.limit, cursor: input.query.cursor))
        return .ok(
            .init(body: .json(.init(items: try page.items.map(Components.Schemas.Command.init), next: page.next))))
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
        return .ok(.init(body: .json(try Components.Schemas.Command(command))))
    }
}
