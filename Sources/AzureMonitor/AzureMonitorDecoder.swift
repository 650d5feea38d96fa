import Foundation
import StandbyCore
import StandbyPrimitives

/// What one delivery to the webhook turned out to be.
public enum DeliveryClassification: Sendable, Hashable {
    /// A payload family Standby knows, reduced to an alert.
    case recognized(NormalizedAlert)
    /// Valid JSON of a shape Standby does not know; kept verbatim and listed, never dropped.
    case unrecognized(reason: String)
}

/// The body is not JSON at all.
public struct MalformedPayload: Error, Sendable, Hashable, CustomStringConvertible {
    public var reason: String
    public var description: String { reason }
}

/// Reads every Azure Monitor webhook payload family: the common alert schema (any
/// `monitoringService`), and the older per-signal schemas that action groups still send when the
/// common schema is off.
public enum AzureMonitorDecoder {
    public static func classify(_ body: Data) throws(MalformedPayload) -> DeliveryClassification {
        let document: JSONValue
        do {
            document = try JSONValue.decode(body)
        } catch {
            throw MalformedPayload(reason: describe(error))
        }
        return classify(document)
    }

    public static func classify(_ document: JSONValue) -> DeliveryClassification {
        guard document.objectValue != nil else {
            return .unrecognized(reason: "the payload is not a JSON object")
        }
        if let schemaId = document["schemaId"]?.stringValue {
            switch schemaId.lowercased() {
            case AlertSchema.common.rawValue.lowercased():
                return CommonAlertPayload(document).map { .recognized($0.normalized()) }
                    ?? .unrecognized(reason: "common alert schema without data.essentials")
            case AlertSchema.metricAlert.rawValue.lowercased():
                return MetricAlertPayload(document["data"] ?? .null).map { .recognized($0.normalized()) }
                    ?? .unrecognized(reason: "\(schemaId) without data.context")
            case AlertSchema.activityLog.rawValue.lowercased():
                return ActivityLogPayload(document["data"] ?? .null).map { .recognized($0.normalized()) }
                    ?? .unrecognized(reason: "\(schemaId) without data.context.activityLog")
            case AlertSchema.logAlert.rawValue.lowercased():
                return LogSearchPayload(document["data"] ?? .null, schema: .logAlert).map {
                    .recognized($0.normalized())
                } ?? .unrecognized(reason: "\(schemaId) without AlertRuleName")
            case AlertSchema.budget.rawValue.lowercased():
                return BudgetPayload(document["data"] ?? .null).map { .recognized($0.normalized()) }
                    ?? .unrecognized(reason: "\(schemaId) without BudgetName")
            default:
                return .unrecognized(reason: "unknown schemaId \"\(schemaId)\"")
            }
        }
        // No schemaId: the Log Analytics log alert and the classic (retired) alerts send none.
        if let common = CommonAlertPayload(document) {
            return .recognized(common.normalized())
        }
        let data = document["data"] ?? document
        if let logSearch = LogSearchPayload(data, schema: .logAnalytics) {
            return .recognized(logSearch.normalized())
        }
        if let budget = BudgetPayload(data) {
            return .recognized(budget.normalized())
        }
        if let activityLog = ActivityLogPayload(data) {
            return .recognized(activityLog.normalized())
        }
        if let metric = MetricAlertPayload(data) {
            return .recognized(metric.normalized())
        }
        return .unrecognized(reason: "no schemaId and no known payload shape")
    }

    private static func describe(_ error: any Error) -> String {
        "the body is not valid JSON: \(error)"
    }
}

// MARK: - Shared readers

enum Read {
    static func string(_ value: JSONValue?) -> String? {
        guard let raw = value?.stringValue else { return nil }
        let text = trimmed(raw)
        return text.isEmpty ? nil : text
    }

    /// Trims ASCII and Unicode whitespace without a round trip through NSString (a hot path).
    static func trimmed(_ text: String) -> String {
        guard let first = text.first, let last = text.last, first.isWhitespace || last.isWhitespace else { return text }
        let start = text.firstIndex { !$0.isWhitespace } ?? text.endIndex
        guard start < text.endIndex else { return "" }
        let end = text.lastIndex { !$0.isWhitespace }!
        return String(text[start...end])
    }

    static func resourceIDs(_ value: JSONValue?) -> [ResourceID] {
        if let items = value?.arrayValue {
            return items.compactMap { string($0) }.map(ResourceID.init)
        }
        return string(value).map { [ResourceID($0)] } ?? []
    }

    /// `Sev3`, `3` and `"3"` all mean severity 3.
    static func severity(_ value: JSONValue?) -> String? {
        guard let text = string(value) else { return nil }
        if let number = Int(text) { return "Sev\(number)" }
        return text
    }

    /// Service names and similar labels compared without case, spaces or dashes.
    static func fold(_ text: String?) -> String {
        let text = text ?? ""
        // ASCII (nearly every label) folds byte by byte; Character-wise filtering is several times slower.
        if text.utf8.allSatisfy({ $0 < 0x80 }) {
            var folded: [UInt8] = []
            folded.reserveCapacity(text.utf8.count)
            for byte in text.utf8 {
                switch byte {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"): folded.append(byte)
                case UInt8(ascii: "A")...UInt8(ascii: "Z"): folded.append(byte + 0x20)
                default: break
                }
            }
            return String(decoding: folded, as: UTF8.self)
        }
        return text.lowercased().filter { $0.isLetter || $0.isNumber }
    }

    static let resolvedStages: Set<String> = ["resolved", "complete", "completed", "rca", "canceled", "cancelled"]

    static func impactedServices(_ value: JSONValue?) -> [ImpactedService] {
        (value?.arrayValue ?? []).compactMap { item in
            guard let service = string(item["ServiceName"]) else { return nil }
            let regions = (item["ImpactedRegions"]?.arrayValue ?? []).compactMap { string($0["RegionName"]) }
            return ImpactedService(service: service, regions: regions)
        }
    }
}

/// The `properties` of a Service Health activity-log event (common or legacy schema alike).
struct ServiceHealthProperties {
    let details: ServiceHealthDetails
    let isSynthetic: Bool

    init(_ properties: JSONValue) {
        var impacted = Read.impactedServices(properties["impactedServices"])
        if impacted.isEmpty, let service = Read.string(properties["service"]) {
            let regions = Read.string(properties["region"]).map { [$0] } ?? []
            impacted = [ImpactedService(service: service, regions: regions)]
        }
        details = ServiceHealthDetails(
            incidentType: Read.string(properties["incidentType"]),
            trackingId: Read.string(properties["trackingId"]),
            stage: Read.string(properties["stage"]),
            title: Read.string(properties["title"]),
            communicationId: Read.string(properties["communicationId"]),
            impactedServices: impacted
        )
        isSynthetic = properties["IsSynthetic"]?.boolValue ?? false
    }

    /// Service Health never sends `monitorCondition: Resolved`; the stage (or the event status) says it.
    func condition(status: String?) -> AlertCondition {
        if Read.resolvedStages.contains(Read.fold(details.stage)) { return .resolved }
        if Read.fold(status) == "resolved" { return .resolved }
        return .fired
    }
}

/// The `properties` of a Resource Health activity-log event.
struct ResourceHealthProperties {
    let details: ResourceHealthDetails

    init(_ properties: JSONValue) {
        details = ResourceHealthDetails(
            currentHealthStatus: Read.string(properties["currentHealthStatus"]),
            previousHealthStatus: Read.string(properties["previousHealthStatus"]),
            cause: Read.string(properties["cause"]),
            type: Read.string(properties["type"]),
            title: Read.string(properties["title"])
        )
    }

    func condition(status: String?) -> AlertCondition {
        if Read.fold(details.currentHealthStatus) == "available" { return .resolved }
        if Read.fold(status) == "resolved" { return .resolved }
        return .fired
    }
}

enum ActivityLogSource {
    case serviceHealth
    case resourceHealth
    case other

    init(eventSource: JSONValue?, operationName: String?, monitoringService: String? = nil) {
        let service = Read.fold(monitoringService)
        let source = Read.fold(eventSource?.stringValue)
        let operation = (operationName ?? "").lowercased()
        if service == "servicehealth" || source == "servicehealth" || operation.hasPrefix("microsoft.servicehealth/") {
            self = .serviceHealth
        } else if service == "resourcehealth" || source == "resourcehealth"
            || operation.hasPrefix("microsoft.resourcehealth/")
        {
            self = .resourceHealth
        } else {
            self = .other
        }
    }
}
