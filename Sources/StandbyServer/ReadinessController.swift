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
        let reports = try validate(document, now: now)
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

    /// The whole batch is checked before anything is stored; every problem names its field.
    func validate(_ document: JSONValue, now: Date) throws -> [ReadinessReportInput] {
        guard let object = document.objectValue else { throw Problem.badRequest("the body must be a JSON object") }
        let items: [JSONValue]
        let batch = object["reports"] != nil
        if batch {
            guard let list = object["reports"]?.arrayValue else {
                throw Problem.unprocessable("reports must be a list", field: "reports")
            }
            guard !list.isEmpty, list.count <= HealthReportBatch.maximumBatch else {
                throw Problem.unprocessable(
                    "reports must hold 1 to \(HealthReportBatch.maximumBatch) reports", field: "reports")
            }
            items = list
        } else {
            items = [document]
        }
        return try items.enumerated().map { index, item in
            let prefix = batch ? "reports[\(index)]." : ""
            guard let fields = item.objectValue else {
                throw Problem.unprocessable("a report must be an object", field: batch ? "reports[\(index)]" : nil)
            }
            func text(_ key: String, maximum: Int) throws -> String {
                guard let value = fields[key]?.stringValue, !value.isEmpty else {
                    throw Problem.unprocessable("\(key) is required (a non-empty string)", field: prefix + key)
                }
                guard value.count <= maximum else {
                    throw Problem.unprocessable("\(key) is longer than \(maximum) characters", field: prefix + key)
                }
                return value
            }
            let hubId = try text("hub", maximum: 200)
            guard let (deployment, hub) = topology.hub(hubId) else {
                throw Problem.unprocessable("unknown hub \"\(hubId)\"", field: prefix + "hub")
            }
            guard let check = ReadinessCheck(rawValue: try text("check", maximum: 64)) else {
                throw Problem.unprocessable(
                    "check must be one of " + ReadinessCheck.allCases.map(\.rawValue).joined(separator: ", "),
                    field: prefix + "check")
            }
            guard let status = ReadinessStatus(rawValue: try text("status", maximum: 32)) else {
                throw Problem.unprocessable("status must be ready, not_ready or unknown", field: prefix + "status")
            }
            var detail: String?
            if let value = fields["detail"], value != .null {
                guard let string = value.stringValue, string.count <= 2000 else {
                    throw Problem.unprocessable(
                        "detail must be a string of at most 2000 characters", field: prefix + "detail")
                }
                detail = string
            }
            guard let observedAt = Timestamp.parse(try text("observedAt", maximum: 64)) else {
                throw Problem.unprocessable("observedAt must be an ISO-8601 timestamp", field: prefix + "observedAt")
            }
            guard observedAt.timeIntervalSince(now) <= HealthReportBatch.allowedClockSkew else {
                throw Problem.unprocessable(
                    "observedAt is more than \(Int(HealthReportBatch.allowedClockSkew))s in the future",
                    field: prefix + "observedAt")
            }
            return ReadinessReportInput(
                id: ids.next(), deploymentId: deployment.id, hubId: hub.id, check: check, status: status,
                detail: detail, observedAt: observedAt)
        }
    }
}
