import Foundation
import Hummingbird
import NIOCore
import StandbyApp
import StandbyCore
import StandbyPrimitives

/// `POST /v1/health-reports`: the application layer's own probes of each hub.
struct HealthReportsController {
    static let maximumBatch = 1000
    static let allowedClockSkew: TimeInterval = 30

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
        let reports = try validate(document, now: now)
        let receipts = try await controlPlane.recordReports(reports, actor: context.actor, now: now)
        let duplicates = receipts.filter { $0.status == "duplicate" }.count
        metrics.count("standby_health_reports_total", [("outcome", "accepted")], by: receipts.count - duplicates)
        if duplicates > 0 {
            metrics.count("standby_health_reports_total", [("outcome", "duplicate")], by: duplicates)
            metrics.count("standby_duplicates_total", [("source", "report")], by: duplicates)
        }
        return Self.receipt(accepted: receipts.count - duplicates, duplicates: duplicates, reports: receipts)
    }

    /// Validates the whole batch before anything is stored; every problem is named by its field.
    func validate(_ document: JSONValue, now: Date) throws -> [HealthReportInput] {
        let items: [(prefix: String, value: JSONValue)]
        if let batch = document["reports"] {
            guard let list = batch.arrayValue, case .array = batch else {
                throw Problem.unprocessable("reports must be a list of reports", field: "reports")
            }
            guard !list.isEmpty else { throw Problem.unprocessable("reports is empty", field: "reports") }
            guard list.count <= Self.maximumBatch else {
                throw Problem.unprocessable(
                    "a batch holds at most \(Self.maximumBatch) reports, this one has \(list.count)", field: "reports")
            }
            items = list.enumerated().map { ("reports[\($0.offset)].", $0.element) }
        } else if document.objectValue != nil {
            items = [("", document)]
        } else {
            throw Problem.badRequest("the body must be a report object or {\"reports\": [...]}")
        }
        var problems: [(field: String, detail: String)] = []
        var reports: [HealthReportInput] = []
        for (prefix, item) in items {
            guard item.objectValue != nil else {
                problems.append((String(prefix.dropLast()), "must be an object"))
                continue
            }
            func text(_ key: String, required: Bool, maximum: Int) -> String? {
                guard let value = item[key], value != .null else {
                    if required { problems.append((prefix + key, "is required")) }
                    return nil
                }
                guard case .string(let string) = value, !string.isEmpty, string.count <= maximum else {
                    problems.append((prefix + key, "must be a non-empty string of at most \(maximum) characters"))
                    return nil
                }
                return string
            }
            let hubId = text("hub", required: true, maximum: 200)
            let hub = hubId.flatMap { topology.hub($0) }
            if let hubId, hub == nil { problems.append((prefix + "hub", "unknown hub \"\(hubId)\"")) }
            let source = text("source", required: true, maximum: 200)
            var outcome: ObservationOutcome?
            if let outcomeText = text("outcome", required: true, maximum: 20) {
                outcome = ObservationOutcome(rawValue: outcomeText)
                if outcome == nil { problems.append((prefix + "outcome", "must be success, failure or degraded")) }
            }
            var observedAt: Date?
            if let observedText = text("observedAt", required: true, maximum: 64) {
                if let date = Timestamp.parse(observedText) {
                    if date.timeIntervalSince(now) > Self.allowedClockSkew {
                        problems.append(
                            (prefix + "observedAt", "is more than \(Int(Self.allowedClockSkew))s in the future"))
                    } else {
                        observedAt = date
                    }
                } else {
                    problems.append(
                        (prefix + "observedAt", "must be an ISO-8601 timestamp such as 2026-11-28T10:00:00.000Z"))
                }
            }
            var latencyMs: Double?
            if let value = item["latencyMs"], value != .null {
                if case .number(let number) = value, number >= 0, number.isFinite {
                    latencyMs = number
                } else {
                    problems.append((prefix + "latencyMs", "must be a number of milliseconds, zero or more"))
                }
            }
            var statusCode: Int?
            if let value = item["statusCode"], value != .null {
                if case .number(let number) = value, number == number.rounded(), (0...999).contains(number) {
                    statusCode = Int(number)
                } else {
                    problems.append((prefix + "statusCode", "must be a whole number from 0 to 999"))
                }
            }
            let detail = text("detail", required: false, maximum: 4000)
            if let (deployment, hubDefinition) = hub, let source, let outcome, let observedAt {
                reports.append(
                    HealthReportInput(
                        id: ids.next(), deploymentId: deployment.id, hubId: hubDefinition.id,
                        source: source.hasPrefix("probe:") ? source : "probe:\(source)", outcome: outcome,
                        observedAt: observedAt, latencyMs: latencyMs, statusCode: statusCode, detail: detail))
            }
        }
        if let first = problems.first {
            throw Problem(
                .unprocessableContent, "invalid-report", title: "The health report is not valid",
                detail: problems.map { "\($0.field): \($0.detail)" }.joined(separator: "; "),
                extensions: [
                    "field": .string(first.field),
                    "errors": .array(
                        problems.map { .object(["field": .string($0.field), "detail": .string($0.detail)]) }),
                ])
        }
        return reports
    }
}
