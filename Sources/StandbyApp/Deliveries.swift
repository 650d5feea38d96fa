import AzureMonitor
import Foundation
import StandbyCore
import StandbyPrimitives

/// A webhook delivery as it arrived, before anything is derived from it.
public struct IncomingDelivery: Sendable, Hashable {
    public var id: String
    public var receivedAt: Date
    public var remoteAddress: String?
    public var contentType: String?
    public var body: Data
    public var sha256: String

    public init(id: String, receivedAt: Date, remoteAddress: String?, contentType: String?, body: Data) {
        self.id = id
        self.receivedAt = receivedAt
        self.remoteAddress = remoteAddress
        self.contentType = contentType
        self.body = body
        self.sha256 = body.sha256Hex
    }
}

/// What the decoder made of a delivery.
public enum DeliveryContent: Sendable, Hashable {
    case alert(NormalizedAlert, hubs: [HubReference])
    case unrecognized(reason: String)
    case malformed(reason: String)
}

extension DeliveryContent {
    /// What a delivery's body is: an alert and the hubs of `topology` it concerns, JSON of a shape
    /// Standby does not know, or not JSON at all. Never throws: odd input is classified.
    public static func classify(_ body: Data, topology: Topology) -> DeliveryContent {
        do {
            switch try AzureMonitorDecoder.classify(body) {
            case .recognized(let alert):
                return .alert(alert, hubs: topology.hubsConcerned(by: alert))
            case .unrecognized(let reason):
                return .unrecognized(reason: reason)
            }
        } catch {
            return .malformed(reason: error.reason)
        }
    }
}

public enum DeliveryOutcome: String, Sendable, Codable, CaseIterable {
    /// First delivery of this alert.
    case new
    /// The alert's state moved (Fired → Resolved, a new Service Health stage, ...).
    case changed
    /// Same alert, same state: an Azure retry or a second action group.
    case duplicate
    /// An older state than the one already recorded (a late retry); ignored.
    case stale
    case unrecognized
    case malformed
}

public enum AlertStatus: String, Sendable, Codable, CaseIterable {
    case recognized
    case unrecognized
    case malformed
}

public struct IngestResult: Sendable, Hashable {
    public var deliveryId: String
    public var alertId: String
    public var outcome: DeliveryOutcome
    public var duplicateCount: Int
    /// The alert as it stands after this delivery; `nil` for unrecognized and malformed bodies.
    public var alert: NormalizedAlert?
    public var hubs: [HubReference]

    public init(
        deliveryId: String, alertId: String, outcome: DeliveryOutcome, duplicateCount: Int,
        alert: NormalizedAlert? = nil, hubs: [HubReference]
    ) {
        self.deliveryId = deliveryId
        self.alertId = alertId
        self.outcome = outcome
        self.duplicateCount = duplicateCount
        self.alert = alert
        self.hubs = hubs
    }
}

public struct AlertQuery: Sendable, Hashable {
    public var hub: String?
    public var deployment: String?
    public var condition: AlertCondition?
    public var status: AlertStatus?
    public var since: Date?
    public var until: Date?
    public var page = PageRequest()

    public init() {}
}

public struct AlertDeliveryView: Sendable, Hashable, Codable {
    public var id: String
    public var receivedAt: String
    public var remoteAddress: String?
    public var contentType: String?
    public var outcome: DeliveryOutcome
    public var sha256: String
    public var bytes: Int

    public init(
        id: String, receivedAt: String, remoteAddress: String? = nil, contentType: String? = nil,
        outcome: DeliveryOutcome, sha256: String, bytes: Int
    ) {
        self.id = id
        self.receivedAt = receivedAt
        self.remoteAddress = remoteAddress
        self.contentType = contentType
        self.outcome = outcome
        self.sha256 = sha256
        self.bytes = bytes
    }
}

/// An alert as the API shows it.
public struct AlertView: Sendable, Hashable, Codable {
    public var id: String
    public var key: String
    public var status: AlertStatus
    public var azureAlertId: String?
    public var rule: String?
    public var severity: String?
    public var signalType: String?
    public var monitoringService: String?
    public var schema: String?
    public var kind: String?
    public var condition: AlertCondition?
    public var targetResourceIds: [String]
    public var hubs: [HubReference]
    public var firedAt: String?
    public var resolvedAt: String?
    public var observedAt: String?
    public var description: String?
    public var isTest: Bool
    public var serviceHealth: ServiceHealthDetails?
    public var resourceHealth: ResourceHealthDetails?
    public var reason: String?
    public var deliveryCount: Int
    public var duplicateCount: Int
    public var createdAt: String
    public var updatedAt: String
    /// Only on the single-alert view: every delivery and the latest raw body.
    public var deliveries: [AlertDeliveryView]?
    public var raw: JSONValue?
    public var rawBase64: String?

    public init(
        id: String, key: String, status: AlertStatus, azureAlertId: String? = nil, rule: String? = nil,
        severity: String? = nil, signalType: String? = nil, monitoringService: String? = nil, schema: String? = nil,
        kind: String? = nil, condition: AlertCondition? = nil, targetResourceIds: [String], hubs: [HubReference],
        firedAt: String? = nil, resolvedAt: String? = nil, observedAt: String? = nil, description: String? = nil,
        isTest: Bool, serviceHealth: ServiceHealthDetails? = nil, resourceHealth: ResourceHealthDetails? = nil,
        reason: String? = nil, deliveryCount: Int, duplicateCount: Int, createdAt: String, updatedAt: String,
        deliveries: [AlertDeliveryView]? = nil, raw: JSONValue? = nil, rawBase64: String? = nil
    ) {
        self.id = id
        self.key = key
        self.status = status
        self.azureAlertId = azureAlertId
        self.rule = rule
        self.severity = severity
        self.signalType = signalType
        self.monitoringService = monitoringService
        self.schema = schema
        self.kind = kind
        self.condition = condition
        self.targetResourceIds = targetResourceIds
        self.hubs = hubs
        self.firedAt = firedAt
        self.resolvedAt = resolvedAt
        self.observedAt = observedAt
        self.description = description
        self.isTest = isTest
        self.serviceHealth = serviceHealth
        self.resourceHealth = resourceHealth
        self.reason = reason
        self.deliveryCount = deliveryCount
        self.duplicateCount = duplicateCount
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.deliveries = deliveries
        self.raw = raw
        self.rawBase64 = rawBase64
    }
}

/// Reads the webhook deliveries and the alerts derived from them (`ControlPlane.ingest` stores
/// them, with the signals they cause): a port of the storage.
public protocol AlertRepository: Sendable {
    func list(_ query: AlertQuery) async throws -> Page<AlertView>
    func get(id: String) async throws -> AlertView?
    /// One delivery as it came (its body byte for byte), for replaying it.
    func delivery(id: String) async throws -> StoredDelivery?
}

/// A webhook delivery as stored: what `standby replay` feeds through normalisation again.
public struct StoredDelivery: Sendable, Hashable {
    public var id: String
    public var receivedAt: String
    public var remoteAddress: String?
    public var contentType: String?
    public var body: Data

    public init(id: String, receivedAt: String, remoteAddress: String?, contentType: String?, body: Data) {
        self.id = id
        self.receivedAt = receivedAt
        self.remoteAddress = remoteAddress
        self.contentType = contentType
        self.body = body
    }
}
