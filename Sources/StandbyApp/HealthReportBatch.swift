import Foundation
import StandbyCore
import StandbyPrimitives

/// A batch of health reports as a reporter posts it (`{"reports": [...]}` or one report object),
/// validated whole before anything is stored.
public enum HealthReportBatch {
    public static let maximumBatch = 1000
    /// How far in the future `observedAt` may be: a reporter's clock a little ahead is fine.
    public static let allowedClockSkew: TimeInterval = 30

    public struct FieldProblem: Sendable, Hashable {
        public var field: String
        public var detail: String
    }

    /// Why a batch was refused; nothing of it was stored.
    public enum Rejection: Error, Sendable, Hashable {
        /// The body is neither a report nor a batch.
        case notReports(String)
        /// The batch itself is wrong (not a list, empty, too long).
        case badBatch(field: String, detail: String)
        /// Reports of the batch are wrong, each problem named by its field (`reports[3].hub`).
        case invalidReports([FieldProblem])
    }

    /// Validates the whole batch before anything is stored; every problem is named by its field.
    public static func validate(_ document: JSONValue, topology: Topology, now: Date, ids: any IDSource)
        throws(Rejection) -> [HealthReportInput]
    {
        let items: [(prefix: String, value: JSONValue)]
        if let batch = document["reports"] {
            guard let list = batch.arrayValue, case .array = batch else {
                throw .badBatch(field: "reports", detail: "reports must be a list of reports")
            }
            guard !list.isEmpty else { throw .badBatch(field: "reports", detail: "reports is empty") }
            guard list.count <= Self.maximumBatch else {
                throw .badBatch(
                    field: "reports",
                    detail: "a batch holds at most \(Self.maximumBatch) reports, this one has \(list.count)")
            }
            items = list.enumerated().map { ("reports[\($0.offset)].", $0.element) }
        } else if document.objectValue != nil {
            items = [("", document)]
        } else {
            throw .notReports("the body must be a report object or {\"reports\": [...]}")
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
        guard problems.isEmpty else {
            throw .invalidReports(problems.map { FieldProblem(field: $0.field, detail: $0.detail) })
        }
        return reports
    }
}
