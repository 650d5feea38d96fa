import Foundation
import StandbyPrimitives

public enum AlertCondition: String, Sendable, Codable, CaseIterable {
    case fired
    case resolved
}

/// Which payload family a delivery belonged to.
public enum AlertSchema: String, Sendable, Codable, CaseIterable {
    case common = "azureMonitorCommonAlertSchema"
    case metricAlert = "AzureMonitorMetricAlert"
    case activityLog = "Microsoft.Insights/activityLogs"
    case logAlert = "Microsoft.Insights/LogAlert"
    case logAnalytics = "LogAnalytics"
    case budget = "AIP Budget Notification"
}

/// What kind of signal an alert carries, as far as Standby's decisions care.
public enum AlertKind: String, Sendable, Codable, CaseIterable {
    case metric
    case log
    case activityLog = "activity-log"
    case serviceHealth = "service-health"
    case resourceHealth = "resource-health"
    case budget
    case smartDetector = "smart-detector"
    case prometheus
    case other
}

public struct ImpactedService: Sendable, Hashable, Codable {
    public var service: String
    public var regions: [String]

    public init(service: String, regions: [String]) {
        self.service = service
        self.regions = regions
    }
}

public struct ServiceHealthDetails: Sendable, Hashable, Codable {
    public var incidentType: String?
    public var trackingId: String?
    public var stage: String?
    public var title: String?
    public var communicationId: String?
    public var impactedServices: [ImpactedService]

    public init(
        incidentType: String?, trackingId: String?, stage: String?, title: String?, communicationId: String?,
        impactedServices: [ImpactedService]
    ) {
        self.incidentType = incidentType
        self.trackingId = trackingId
        self.stage = stage
        self.title = title
        self.communicationId = communicationId
        self.impactedServices = impactedServices
    }

    public var isIncident: Bool { incidentType?.lowercased() == "incident" }
}

public struct ResourceHealthDetails: Sendable, Hashable, Codable {
    public var currentHealthStatus: String?
    public var previousHealthStatus: String?
    public var cause: String?
    public var type: String?
    public var title: String?

    public init(
        currentHealthStatus: String?, previousHealthStatus: String?, cause: String?, type: String?, title: String?
    ) {
        self.currentHealthStatus = currentHealthStatus
        self.previousHealthStatus = previousHealthStatus
        self.cause = cause
        self.type = type
        self.title = title
    }

    public var isPlatformOutage: Bool {
        currentHealthStatus?.lowercased() == "unavailable" && cause?.lowercased() == "platforminitiated"
    }
}

/// One Azure Monitor notification reduced to what Standby reasons about. The raw delivery is kept
/// verbatim beside it, so nothing dropped here is lost.
public struct NormalizedAlert: Sendable, Hashable {
    /// Identity across deliveries: Fired and Resolved of one alert share it, and so do retries.
    public var key: String
    public var azureAlertId: String?
    public var rule: String?
    public var severity: String?
    public var signalType: String?
    public var monitoringService: String?
    public var schema: AlertSchema
    public var kind: AlertKind
    public var condition: AlertCondition
    public var targetResourceIDs: [ResourceID]
    public var firedAt: Date?
    public var resolvedAt: Date?
    public var description: String?
    /// When the state this delivery describes happened; orders out-of-order retries.
    public var observedAt: Date?
    public var isTest: Bool
    public var serviceHealth: ServiceHealthDetails?
    public var resourceHealth: ResourceHealthDetails?

    public init(
        key: String, azureAlertId: String? = nil, rule: String? = nil, severity: String? = nil,
        signalType: String? = nil, monitoringService: String? = nil, schema: AlertSchema, kind: AlertKind,
        condition: AlertCondition, targetResourceIDs: [ResourceID] = [], firedAt: Date? = nil,
        resolvedAt: Date? = nil, description: String? = nil, observedAt: Date? = nil, isTest: Bool = false,
        serviceHealth: ServiceHealthDetails? = nil, resourceHealth: ResourceHealthDetails? = nil
    ) {
        self.key = key
        self.azureAlertId = azureAlertId
        self.rule = rule
        self.severity = severity
        self.signalType = signalType
        self.monitoringService = monitoringService
        self.schema = schema
        self.kind = kind
        self.condition = condition
        self.targetResourceIDs = targetResourceIDs
        self.firedAt = firedAt
        self.resolvedAt = resolvedAt
        self.description = description
        self.observedAt = observedAt
        self.isTest = isTest
        self.serviceHealth = serviceHealth
        self.resourceHealth = resourceHealth
    }

    /// What makes a later delivery of the same alert a change rather than a duplicate.
    public var stateFingerprint: String {
        [
            condition.rawValue,
            serviceHealth?.stage ?? "",
            serviceHealth?.communicationId ?? "",
            resourceHealth?.currentHealthStatus ?? "",
            resourceHealth?.cause ?? "",
        ].joined(separator: "|")
    }
}
