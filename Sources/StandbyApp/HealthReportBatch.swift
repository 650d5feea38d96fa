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

    /// The reports of a body, one object or `{"reports": [...]}`, each with the prefix its fields
    /// are named by (`reports[3].`): the batch shape every report route takes.
    public static func items(_ document: JSONValue) throws(Rejection) -> [(prefix: String, value: JSONValue)] {
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
            return list.enumerated().map { ("reports[\($0.offset)].", $0.element) }
        }
        guard document.objectValue != nil else {
            throw .notReports("the body must be a report object or {\"reports\": [...]}")
        }
        return [("", document)]
    }

    /// Reads the fields of one report of a batch, collecting each problem with its field's name.
    public struct Fields {
        let prefix: String
        let item: JSONValue
        public private(set) var problems: [FieldProblem] = []

        public init(prefix: String, item: JSONValue) {
            self.prefix = prefix
            self.item = item
            if item.objectValue == nil {
                problems.append(FieldProblem(field: String(prefix.dropLast()), detail: "must be an object"))
            }
        }

        public var isObject: Bool { item.objectValue != nil }

        public mutating func problem(_ key: String, _ detail: String) {
            problems.append(FieldProblem(field: prefix + key, detail: detail))
        }

        public subscript(key: String) -> JSONValue? {
            guard let value = item[key], value != .null else { return nil }
            return value
        }

        public mutating func text(_ key: String, required: Bool, maximum: Int) -> String? {
            guard let value = self[key] else {
                if required { problem(key, "is required") }
                return nil
            }
            guard case .string(let string) = value, !string.isEmpty, string.count <= maximum else {
                problem(key, "must be a non-empty string of at most \(maximum) characters")
                return nil
            }
            return string
        }

        /// A required hub of `topology`.
        public mutating func hub(in topology: Topology) -> (DeploymentDefinition, HubDefinition)? {
            guard let hubId = text("hub", required: true, maximum: 200) else { return nil }
            guard let hub = topology.hub(hubId) else {
                problem("hub", "unknown hub \"\(hubId)\"")
                return nil
            }
            return hub
        }

        /// A required value of `T`, named by its raw value.
        public mutating func choice<T: RawRepresentable & CaseIterable>(_ key: String, as type: T.Type) -> T?
        where T.RawValue == String {
            guard let text = text(key, required: true, maximum: 64) else { return nil }
            guard let value = T(rawValue: text) else {
                problem(key, "must be one of " + T.allCases.map(\.rawValue).joined(separator: ", "))
                return nil
            }
            return value
        }

        /// A required `observedAt` no further ahead of `now` than the allowed clock skew.
        public mutating func observedAt(now: Date) -> Date? {
            guard let observedText = text("observedAt", required: true, maximum: 64) else { return nil }
            guard let date = Timestamp.parse(observedText) else {
                problem("observedAt", "must be an ISO-8601 timestamp such as 2026-11-28T10:00:00.000Z")
                return nil
            }
            guard date.timeIntervalSince(now) <= HealthReportBatch.allowedClockSkew else {
                problem("observedAt", "is more than \(Int(HealthReportBatch.allowedClockSkew))s in the future")
                return nil
            }
            return date
        }
    }

    /// Validates the whole batch before anything is stored; every problem is named by its field.
    public static func validate(_ document: JSONValue, topology: Topology, now: Date, ids: any IDSource)
        throws(Rejection) -> [HealthReportInput]
    {
        var problems: [FieldProblem] = []
        var reports: [HealthReportInput] = []
        for (prefix, item) in try items(document) {
            var fields = Fields(prefix: prefix, item: item)
            defer { problems += fields.problems }
            guard fields.isObject else { continue }
            let hub = fields.hub(in: topology)
            let source = fields.text("source", required: true, maximum: 200)
            var outcome: ObservationOutcome?
            if let outcomeText = fields.text("outcome", required: true, maximum: 20) {
                outcome = ObservationOutcome(rawValue: outcomeText)
                if outcome == nil { fields.problem("outcome", "must be success, failure or degraded") }
            }
            let observedAt = fields.observedAt(now: now)
            var latencyMs: Double?
            if let value = fields["latencyMs"] {
                if case .number(let number) = value, number >= 0, number.isFinite {
                    latencyMs = number
                } else {
                    fields.problem("latencyMs", "must be a number of milliseconds, zero or more")
                }
            }
            var statusCode: Int?
            if let value = fields["statusCode"] {
                if case .number(let number) = value, number == number.rounded(), (0...999).contains(number) {
                    statusCode = Int(number)
                } else {
                    fields.problem("statusCode", "must be a whole number from 0 to 999")
                }
            }
            let detail = fields.text("detail", required: false, maximum: 4000)
            if let (deployment, hubDefinition) = hub, let source, let outcome, let observedAt {
                reports.append(
                    HealthReportInput(
                        id: ids.next(), deploymentId: deployment.id, hubId: hubDefinition.id,
                        source: source.hasPrefix("probe:") ? source : "probe:\(source)", outcome: outcome,
                        observedAt: observedAt, latencyMs: latencyMs, statusCode: statusCode, detail: detail))
            }
        }
        guard problems.isEmpty else { throw .invalidReports(problems) }
        return reports
    }
}
