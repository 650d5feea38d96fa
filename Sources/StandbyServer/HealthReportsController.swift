import Foundation
import Hummingbird
import NIOCore
import StandbyApp
import StandbyCore
import StandbyPrimitives

/// `POST /v1/health-reports`: the application layer's own probes of each hub.
struct HealthReportsController {
    let controlPlane: ControlPlane
    let topology: Topology
    let timeSource: any TimeSource
    let ids: any IDSource
    let maxBodyBytes: Int
    let metrics: StandbyMetrics

    var endpoints: RouteCollection<StandbyRequestContext> {
        let routes = RouteCollection(context: StandbyRequestContext.self)
        routes.post(use: receive)
        return routes
    }

    static func receipt(accepted: Int, duplicates: Int, reports: [ReportReceipt]) -> JSONResponse {
        JSONResponse(
            body: .object([
                "accepted": .number(Double(accepted)), "duplicates": .number(Double(duplicates)),
                "reports": .array(reports.map { $0.jsonValue() }),
            ]))
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
        let reports: [HealthReportInput]
        do {
            reports = try HealthReportBatch.validate(document, topology: topology, now: now, ids: ids)
        } catch {
            throw Problem(error)
        }
        let receipts = try await controlPlane.recordReports(reports, actor: context.actor, now: now)
        let duplicates = receipts.filter { $0.status == "duplicate" }.count
        metrics.count("standby_health_reports_total", [("outcome", "accepted")], by: receipts.count - duplicates)
        if duplicates > 0 {
            metrics.count("standby_health_reports_total", [("outcome", "duplicate")], by: duplicates)
            metrics.count("standby_duplicates_total", [("source", "report")], by: duplicates)
        }
        return Self.receipt(accepted: receipts.count - duplicates, duplicates: duplicates, reports: receipts)
    }
}

extension Problem {
    /// A refused batch as RFC 9457 says it: every problem named by its field.
    init(_ rejection: HealthReportBatch.Rejection) {
        switch rejection {
        case .notReports(let detail):
            self = .badRequest(detail)
        case .badBatch(let field, let detail):
            self = .unprocessable(detail, field: field)
        case .invalidReports(let problems):
            self.init(
                .unprocessableContent, "invalid-report", title: "The health report is not valid",
                detail: problems.map { "\($0.field): \($0.detail)" }.joined(separator: "; "),
                extensions: [
                    "field": .string(problems.first?.field ?? ""),
                    "errors": .array(
                        problems.map { .object(["field": .string($0.field), "detail": .string($0.detail)]) }),
                ])
        }
    }
}
