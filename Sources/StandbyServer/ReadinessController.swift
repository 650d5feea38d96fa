import Foundation
import Hummingbird
import StandbyApp
import StandbyCore
import StandbyPrimitives

/// `POST /v1/readiness-reports`: whether each hub could take traffic, check by check.
struct ReadinessController {
    let controlPlane: ControlPlane
    let topology: Topology
    let timeSource: any TimeSource
    let ids: any IDSource
    let maxBodyBytes: Int

    var endpoints: RouteCollection<StandbyRequestContext> {
        let routes = RouteCollection(context: StandbyRequestContext.self)
        routes.post(use: receive)
        return routes
    }

    @Sendable func receive(_ request: Request, context: StandbyRequestContext) async throws -> JSONResponse {
        let buffer = try await request.body.collect(upTo: maxBodyBytes)
        let document: JSONValue
        do {
            document = try JSONValue.decode(Data(buffer.readableBytesView))
        } catch {
            throw Problem.badRequest("the body is not valid JSON")
        }
        let now = timeSource.now()
        let reports: [ReadinessReportInput]
        do {
            reports = try ReadinessReportBatch.validate(document, topology: topology, now: now, ids: ids)
        } catch {
            throw Problem(error)
        }
        let receipts = try await controlPlane.recordReadiness(reports, actor: context.actor, now: now)
        let duplicates = receipts.filter { $0.status == "duplicate" }.count
        return JSONResponse(
            body: .object([
                "accepted": .number(Double(receipts.count - duplicates)), "duplicates": .number(Double(duplicates)),
                "reports": .array(
                    receipts.map {
                        .object([
                            "id": .string($0.id), "hub": .string($0.hub), "check": .string($0.check),
                            "observedAt": .string($0.observedAt), "status": .string($0.status),
                        ])
                    }),
            ]))
    }
}
