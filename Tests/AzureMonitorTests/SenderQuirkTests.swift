import Foundation
import StandbyCore
import StandbyPrimitives
import Testing

@testable import AzureMonitor

@Suite("Real senders' inconsistencies")
struct SenderQuirkTests {
    func decode(_ json: String) throws -> NormalizedAlert {
        guard case .recognized(let alert) = try AzureMonitorDecoder.classify(Data(json.utf8)) else {
            throw DecodeFailure()
        }
        return alert
    }

    struct DecodeFailure: Error {}

    @Test("alertTargetIds in another case, severity as a number, time without Z and with 7 digits")
    func mixedSpellings() throws {
        let alert = try decode(
            """
            {"schemaId":"AzureMonitorCommonAlertSchema","data":{"essentials":{
              "alertId":"/subscriptions/1/providers/Microsoft.AlertsManagement/alerts/a1","alertRule":"hub-availability",
              "severity":2,"signalType":"Metric","monitorCondition":"resolved","monitoringService":"Platform",
              "alertTargetIds":["/SUBSCRIPTIONS/1/resourceGroups/RG/providers/X/y/z"],
              "firedDateTime":"2026-11-28T10:00:00.1234567","resolvedDateTime":"2026-11-28T10:05:00+01:00"},
              "alertContext":{"condition":{"allOf":[{"threshold":"25","metricValue":"7.5"}]}}}}
            """)
        #expect(alert.severity == "Sev2")
        #expect(alert.condition == .resolved)
        #expect(alert.targetResourceIDs == [ResourceID("/subscriptions/1/resourcegroups/rg/providers/x/y/z")])
        let fired = try #require(alert.firedAt)
        #expect(abs(fired.timeIntervalSince1970 - 1_795_860_000.1234567) < 0.000_001)
        #expect(alert.resolvedAt == Timestamp.parse("2026-11-28T09:05:00Z"))
    }

    @Test("Service Health incident with isSynthetic in lower case and an escaped impactedServices string")
    func serviceHealthIncident() throws {
        let alert = try decode(
            """
            {"schemaId":"azureMonitorCommonAlertSchema","data":{"essentials":{"alertId":"a","alertRule":"sh",
              "monitorCondition":"Fired","monitoringService":"ServiceHealth","signalType":"Activity Log",
              "firedDateTime":"2026-11-28T10:00:00Z"},
              "alertContext":{"eventSource":"ServiceHealth","status":"Active","operationName":"Microsoft.ServiceHealth/incident/action",
                "eventTimestamp":"2026-11-28T10:00:00Z",
                "properties":{"incidentType":"Incident","trackingId":"ABC-123","stage":"Active","isSynthetic":"false",
                  "impactedServices":"[{\\"ImpactedRegions\\":[{\\"RegionName\\":\\"East US\\"},{\\"RegionName\\":\\"West Europe\\"}],\\"ServiceName\\":\\"Azure Machine Learning\\"}]"}}}}
            """)
        #expect(alert.kind == .serviceHealth)
        #expect(alert.condition == .fired)
        #expect(alert.isTest == false)
        #expect(alert.serviceHealth?.isIncident == true)
        #expect(
            alert.serviceHealth?.impactedServices
                == [ImpactedService(service: "Azure Machine Learning", regions: ["East US", "West Europe"])])
    }

    @Test("Log Analytics alert without schemaId, at the top level")
    func logAnalyticsWithoutSchema() throws {
        let alert = try decode(
            """
            {"SubscriptionId":"s1","AlertRuleName":"hub-errors","SearchQuery":"requests","SearchIntervalEndtimeUtc":"2026-11-28T10:00:00Z",
             "AlertThresholdOperator":"Greater Than","AlertThresholdValue":"0","ResultCount":2,"Severity":"1","WorkspaceId":"w"}
            """)
        #expect(alert.schema == .logAnalytics)
        #expect(alert.severity == "Sev1")
        #expect(alert.rule == "hub-errors")
    }

    @Test("budget notification without the common schema")
    func budgetLegacy() throws {
        let alert = try decode(
            """
            {"schemaId":"AIP Budget Notification","data":{"SubscriptionName":"x","SubscriptionId":"s1","SpendingAmount":"4",
             "BudgetStartDate":"2026-11-01","Budget":"10","Unit":"USD","BudgetName":"hubs","BudgetType":"Cost",
             "NotificationThresholdAmount":"8"}}
            """)
        #expect(alert.schema == .budget)
        #expect(alert.kind == .budget)
    }

    @Test("unknown schemaId and non-object JSON are unrecognized, not errors")
    func unknownShapes() throws {
        for body in [#"{"schemaId":"Something/New","data":{}}"#, "[1,2,3]", "42", #"{"hello":"world"}"#] {
            let result = try AzureMonitorDecoder.classify(Data(body.utf8))
            guard case .unrecognized = result else {
                Issue.record("\(body) gave \(result)")
                continue
            }
        }
    }

    @Test("invalid JSON is malformed")
    func malformed() {
        for body in ["{", "", "{\"a\":}", "\u{FF}\u{FE}"] {
            #expect(throws: MalformedPayload.self) { try AzureMonitorDecoder.classify(Data(body.utf8)) }
        }
    }
}

@Suite("Label folding")
struct LabelFoldingTests {
    /// What folding means, for any string: lower case, letters and digits only.
    static func reference(_ text: String) -> String { text.lowercased().filter { $0.isLetter || $0.isNumber } }

    @Test(
        "labels fold the same on the ASCII fast path and the Unicode path",
        arguments: [
            "ServiceHealth", "Resource Health", "Activity Log - Administrative", "Azure Machine-Learning", "RCA", "",
            "Log Alerts V2", "Ärger Größe", "Éclair 日本 2", "tab\there", "MIXED_case-123",
        ])
    func foldMatchesReference(_ label: String) {
        #expect(Read.fold(label) == Self.reference(label))
    }

    @Test("every printable ASCII character folds as the reference does")
    func everyASCIICharacter() {
        let all = String((0x20..<0x7F).map { Character(Unicode.Scalar(UInt8($0))) })
        #expect(Read.fold(all) == Self.reference(all))
        #expect(Read.fold(nil) == "")
    }
}
