import Foundation
import StandbyCore
import StandbyPrimitives

/// `schemaId: azureMonitorCommonAlertSchema`: `data.essentials` plus a per-service `alertContext`.
struct CommonAlertPayload {
    let essentials: JSONValue
    let alertContext: JSONValue

    init?(_ document: JSONValue) {
        guard let essentials = document["data"]?["essentials"], essentials.objectValue != nil else { return nil }
        self.essentials = essentials
        self.alertContext = document["data"]?["alertContext"] ?? .null
    }

    func normalized() -> NormalizedAlert {
        let alertId = Read.string(essentials["alertId"])
        let rule = Read.string(essentials["alertRule"])
        let monitoringService = Read.string(essentials["monitoringService"])
        let signalType = Read.string(essentials["signalType"])
        let firedAt = essentials["firedDateTime"]?.dateValue
        let resolvedAt = essentials["resolvedDateTime"]?.dateValue
        let targets = Read.resourceIDs(essentials.first("alertTargetIDs", "alertTargetIds"))
        var alert = NormalizedAlert(
            key: alertId ?? "common:\(rule ?? "")|\(Read.string(essentials["originAlertId"]) ?? "")",
            azureAlertId: alertId,
            rule: rule,
            severity: Read.severity(essentials["severity"]),
            signalType: signalType,
            monitoringService: monitoringService,
            schema: .common,
            kind: Self.kind(monitoringService: monitoringService, signalType: signalType),
            condition: Read.fold(Read.string(essentials["monitorCondition"])) == "resolved" ? .resolved : .fired,
            targetResourceIDs: targets,
            firedAt: firedAt,
            resolvedAt: resolvedAt,
            description: Read.string(essentials["description"]),
            observedAt: resolvedAt ?? firedAt
        )
        let operationName = Read.string(alertContext["operationName"])
        let status = Read.string(alertContext["status"])
        let properties = alertContext["properties"] ?? .null
        let eventAt = alertContext.first("eventTimestamp", "submissionTimestamp")?.dateValue
        switch ActivityLogSource(
            eventSource: alertContext["eventSource"], operationName: operationName,
            monitoringService: monitoringService)
        {
        case .serviceHealth:
            let serviceHealth = ServiceHealthProperties(properties)
            alert.kind = .serviceHealth
            alert.serviceHealth = serviceHealth.details
            alert.isTest = serviceHealth.isSynthetic
            alert.condition = serviceHealth.condition(status: status)
            alert.observedAt = eventAt ?? firedAt
            // Each update of an incident arrives as a new Azure alert; the tracking id ties them.
            if let trackingId = serviceHealth.details.trackingId { alert.key = "servicehealth:\(trackingId)" }
            if alert.condition == .resolved {
                alert.resolvedAt = properties["impactMitigationTime"]?.dateValue ?? eventAt ?? firedAt
            }
        case .resourceHealth:
            let resourceHealth = ResourceHealthProperties(properties)
            alert.kind = .resourceHealth
            alert.resourceHealth = resourceHealth.details
            alert.condition = resourceHealth.condition(status: status)
            alert.observedAt = eventAt ?? firedAt
            // Activated and Resolved are separate Azure alerts about one resource's health.
            if let target = targets.first { alert.key = "resourcehealth:\(target.normalized)" }
            if alert.condition == .resolved { alert.resolvedAt = eventAt ?? firedAt }
        case .other:
            if alert.kind == .activityLog, let eventAt { alert.observedAt = eventAt }
        }
        return alert
    }

    static func kind(monitoringService: String?, signalType: String?) -> AlertKind {
        let service = Read.fold(monitoringService)
        switch service {
        case "servicehealth": return .serviceHealth
        case "resourcehealth": return .resourceHealth
        case "costalerts", "budget", "budgets": return .budget
        case "smartdetector": return .smartDetector
        case "prometheus": return .prometheus
        default: break
        }
        if service.hasPrefix("activitylog") { return .activityLog }
        switch Read.fold(signalType) {
        case "metric": return .metric
        case "log": return .log
        case "activitylog": return .activityLog
        default: return .other
        }
    }
}

/// `schemaId: AzureMonitorMetricAlert` (and the classic metric alert that had no schemaId).
struct MetricAlertPayload {
    let status: String?
    let context: JSONValue

    init?(_ data: JSONValue) {
        guard let context = data["context"], context.objectValue != nil,
            context["condition"] != nil || context["conditionType"] != nil
        else { return nil }
        self.context = context
        self.status = Read.string(data["status"])
    }

    func normalized() -> NormalizedAlert {
        let ruleId = Read.string(context["id"])
        let targets = Read.resourceIDs(context["resourceId"])
        let at = context["timestamp"]?.dateValue
        let resolved = Read.fold(status) == "resolved" || Read.fold(status) == "deactivated"
        return NormalizedAlert(
            key: "metricalert:\(ruleId ?? Read.string(context["name"]) ?? "")|\(targets.first?.normalized ?? "")",
            azureAlertId: ruleId,
            rule: Read.string(context["name"]),
            severity: Read.severity(context["severity"]),
            signalType: "Metric",
            monitoringService: "Platform",
            schema: .metricAlert,
            kind: .metric,
            condition: resolved ? .resolved : .fired,
            targetResourceIDs: targets,
            firedAt: resolved ? nil : at,
            resolvedAt: resolved ? at : nil,
            description: Read.string(context["description"]),
            observedAt: at
        )
    }
}

/// `schemaId: Microsoft.Insights/activityLogs`: the activity-log event under `data.context.activityLog`.
struct ActivityLogPayload {
    let status: String?
    let event: JSONValue

    init?(_ data: JSONValue) {
        guard let event = data["context"]?["activityLog"], event.objectValue != nil else { return nil }
        self.event = event
        self.status = Read.string(data["status"])
    }

    func normalized() -> NormalizedAlert {
        let operationName = Read.string(event["operationName"])
        let eventStatus = Read.string(event["status"])
        let properties = event["properties"] ?? .null
        let at = event.first("eventTimestamp", "submissionTimestamp")?.dateValue
        let targets = Read.resourceIDs(event["resourceId"])
        let eventId = Read.string(event["eventDataId"]) ?? Read.string(event["correlationId"]) ?? ""
        var alert = NormalizedAlert(
            key: "activitylog:\(eventId)",
            azureAlertId: Read.string(event["eventDataId"]),
            rule: nil,
            severity: Read.string(event["level"]),
            signalType: "Activity Log",
            monitoringService: Read.string(event["eventSource"]).map { "Activity Log - \($0)" },
            schema: .activityLog,
            kind: .activityLog,
            condition: Read.fold(status) == "resolved" ? .resolved : .fired,
            targetResourceIDs: targets,
            firedAt: at,
            description: Read.string(event["description"]) ?? operationName,
            observedAt: at
        )
        switch ActivityLogSource(eventSource: event["eventSource"], operationName: operationName) {
        case .serviceHealth:
            let serviceHealth = ServiceHealthProperties(properties)
            alert.kind = .serviceHealth
            alert.monitoringService = "ServiceHealth"
            alert.serviceHealth = serviceHealth.details
            alert.isTest = serviceHealth.isSynthetic
            alert.condition = serviceHealth.condition(status: eventStatus)
            if let trackingId = serviceHealth.details.trackingId { alert.key = "servicehealth:\(trackingId)" }
        case .resourceHealth:
            let resourceHealth = ResourceHealthProperties(properties)
            alert.kind = .resourceHealth
            alert.monitoringService = "Resource Health"
            alert.resourceHealth = resourceHealth.details
            alert.condition = resourceHealth.condition(status: eventStatus)
            if let target = targets.first { alert.key = "resourcehealth:\(target.normalized)" }
        case .other:
            break
        }
        if alert.condition == .resolved {
            alert.resolvedAt = at
            alert.firedAt = nil
        }
        return alert
    }
}

/// Log search alerts without the common schema: Application Insights (`Microsoft.Insights/LogAlert`)
/// and Log Analytics (no schemaId at all).
struct LogSearchPayload {
    let data: JSONValue
    let schema: AlertSchema

    init?(_ data: JSONValue, schema: AlertSchema) {
        guard data["AlertRuleName"] != nil, data["SearchQuery"] != nil || data["SearchIntervalEndtimeUtc"] != nil
        else { return nil }
        self.data = data
        self.schema = schema
    }

    func normalized() -> NormalizedAlert {
        let rule = Read.string(data["AlertRuleName"])
        let windowEnd = data.first("SearchIntervalEndtimeUtc", "SearchIntervalEndTimeUtc")
        let subscription = Read.string(data["SubscriptionId"])
        var targets = Read.resourceIDs(data["ResourceId"])
        if targets.isEmpty, let workspace = Read.string(data["WorkspaceResourceId"]) {
            targets = [ResourceID(workspace)]
        }
        return NormalizedAlert(
            key: "\(schema == .logAlert ? "logalert" : "loganalytics"):\(subscription ?? "")|\(rule ?? "")|"
                + (windowEnd?.stringValue ?? ""),
            rule: rule,
            severity: Read.severity(data["Severity"]),
            signalType: "Log",
            monitoringService: schema == .logAlert ? "Application Insights" : "Log Analytics",
            schema: schema,
            kind: .log,
            condition: .fired,
            targetResourceIDs: targets,
            firedAt: windowEnd?.dateValue,
            description: Read.string(data["Description"]),
            observedAt: windowEnd?.dateValue
        )
    }
}

/// Cost budget notifications without the common schema (`schemaId: AIP Budget Notification`).
struct BudgetPayload {
    let data: JSONValue

    init?(_ data: JSONValue) {
        guard data["BudgetName"] != nil else { return nil }
        self.data = data
    }

    func normalized() -> NormalizedAlert {
        let name = Read.string(data["BudgetName"])
        let subscription = Read.string(data["SubscriptionId"])
        let start = Read.string(data["BudgetStartDate"])
        let threshold = Read.string(data["NotificationThresholdAmount"])
        return NormalizedAlert(
            key: "budget:\(subscription ?? "")|\(name ?? "")|\(start ?? "")|\(threshold ?? "")",
            rule: name,
            monitoringService: "CostAlerts",
            schema: .budget,
            kind: .budget,
            condition: .fired,
            targetResourceIDs: subscription.map { [ResourceID("/subscriptions/\($0)")] } ?? [],
            description: Read.string(data["BudgetType"]).map {
                "\($0) budget \(name ?? "") crossed \(threshold ?? "?")"
            }
        )
    }
}
