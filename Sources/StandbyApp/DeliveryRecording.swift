import Foundation
import StandbyCore
import StandbyPrimitives

// The raw-first step of ingest, the same on every store: a webhook delivery is kept as it came,
// and the alert it carries is created, changed, or counted as a duplicate (same alert key and
// state) or as stale (observed before the stored state). A store supplies the row operations.

/// What the ingest reads back of a stored alert to tell a duplicate from a change.
public struct StoredAlertHead: Sendable, Hashable {
    public var id: String
    public var condition: AlertCondition?
    public var stateFingerprint: String?
    public var observedAt: String?
    public var firedAt: String?
    public var duplicateCount: Int

    public init(
        id: String, condition: AlertCondition?, stateFingerprint: String?, observedAt: String?, firedAt: String?,
        duplicateCount: Int
    ) {
        self.id = id
        self.condition = condition
        self.stateFingerprint = stateFingerprint
        self.observedAt = observedAt
        self.firedAt = firedAt
        self.duplicateCount = duplicateCount
    }
}

/// An alert's columns as a store writes them: text, JSON as canonical text.
public struct AlertColumns: Sendable, Hashable {
    public var condition: String
    public var severity: String?
    public var firedAt: String?
    public var resolvedAt: String?
    public var observedAt: String?
    public var details: String?
    public var stateFingerprint: String
    public var hubs: String
    public var targetIds: String
    public var description: String?

    init(_ alert: NormalizedAlert, hubs: [HubReference], firedAt: String?) {
        condition = alert.condition.rawValue
        severity = alert.severity
        self.firedAt = firedAt
        resolvedAt = alert.condition == .resolved ? alert.resolvedAt.map(Timestamp.format) : nil
        observedAt = alert.observedAt.map(Timestamp.format)
        details = AlertColumns.details(alert)
        stateFingerprint = alert.stateFingerprint
        self.hubs = JSONValue.array(hubs.map { $0.jsonValue() }).canonicalString()
        targetIds = JSONValue.array(alert.targetResourceIDs.map { .string($0.original) }).canonicalString()
        description = alert.description
    }

    private static func details(_ alert: NormalizedAlert) -> String? {
        var details: [String: JSONValue] = [:]
        if let serviceHealth = alert.serviceHealth { details["serviceHealth"] = JSONValue.encoding(serviceHealth) }
        if let resourceHealth = alert.resourceHealth { details["resourceHealth"] = JSONValue.encoding(resourceHealth) }
        return details.isEmpty ? nil : JSONValue.object(details).canonicalString()
    }
}

/// The row operations the ingest runs inside a unit of work.
public protocol AlertRecords {
    func alertHead(key: String) throws -> StoredAlertHead?
    /// Inserts a recognised alert first seen in `deliveryId`.
    func insertAlert(
        id: String, key: String, alert: NormalizedAlert, columns: AlertColumns, deliveryId: String, at: String
    ) throws
    /// Inserts an unrecognised or malformed body as an alert keyed by its status and hash.
    func insertOpaqueAlert(
        id: String, key: String, status: AlertStatus, details: String, deliveryId: String, at: String) throws
    /// One more delivery of an alert that changes nothing.
    func countDuplicateDelivery(alertId: String, deliveryId: String) throws
    /// A delivery that changed the alert's state.
    func updateAlert(id: String, columns: AlertColumns, deliveryId: String, at: String) throws
    /// The hubs an alert concerns, replacing those stored.
    func replaceAlertHubs(alertId: String, hubs: [HubReference], replacing: Bool) throws
    func insertDelivery(
        _ delivery: IncomingDelivery, outcome: DeliveryOutcome, schema: String?, alertId: String, detail: String?)
        throws
    /// Appends one line of history in the same unit of work.
    func append(_ event: EventDraft) throws
}

extension AlertRecords {
    /// Stores the raw delivery and its alert, with their history events.
    public func record(_ delivery: IncomingDelivery, content: DeliveryContent, ids: any IDSource) throws
        -> IngestResult
    {
        var result: IngestResult
        var schema: String?
        var detail: String?
        switch content {
        case .alert(let alert, let hubs):
            schema = alert.schema.rawValue
            result = try upsert(alert, hubs: hubs, delivery: delivery, ids: ids)
        case .unrecognized(let reason):
            detail = reason
            result = try upsertOpaque(.unrecognized, reason: reason, delivery: delivery, ids: ids)
        case .malformed(let reason):
            detail = reason
            result = try upsertOpaque(.malformed, reason: reason, delivery: delivery, ids: ids)
        }
        try insertDelivery(delivery, outcome: result.outcome, schema: schema, alertId: result.alertId, detail: detail)
        try append(
            EventDraft(
                type: "delivery.received", at: delivery.receivedAt, actor: "azure-monitor",
                data: .object([
                    "deliveryId": .string(delivery.id),
                    "alertId": .string(result.alertId),
                    "outcome": .string(result.outcome.rawValue),
                    "sha256": .string(delivery.sha256),
                    "bytes": .number(Double(delivery.body.count)),
                    "remoteAddress": delivery.remoteAddress.map(JSONValue.string) ?? .null,
                ])))
        return result
    }

    private func upsert(_ alert: NormalizedAlert, hubs: [HubReference], delivery: IncomingDelivery, ids: any IDSource)
        throws -> IngestResult
    {
        let now = Timestamp.format(delivery.receivedAt)
        guard let existing = try alertHead(key: alert.key) else {
            let id = ids.next()
            try insertAlert(
                id: id, key: alert.key, alert: alert,
                columns: AlertColumns(alert, hubs: hubs, firedAt: alert.firedAt.map(Timestamp.format)),
                deliveryId: delivery.id, at: now)
            try replaceAlertHubs(alertId: id, hubs: hubs, replacing: false)
            try appendAlertEvents("alert.created", alert: alert, alertId: id, hubs: hubs, previous: nil, at: delivery)
            return IngestResult(
                deliveryId: delivery.id, alertId: id, outcome: .new, duplicateCount: 0, alert: alert, hubs: hubs)
        }
        let storedObservedAt = existing.observedAt.flatMap(Timestamp.parse)
        let isStale = storedObservedAt.map { stored in alert.observedAt.map { $0 < stored } ?? false } ?? false
        if isStale || existing.stateFingerprint == alert.stateFingerprint {
            try countDuplicateDelivery(alertId: existing.id, deliveryId: delivery.id)
            return IngestResult(
                deliveryId: delivery.id, alertId: existing.id, outcome: isStale ? .stale : .duplicate,
                duplicateCount: existing.duplicateCount + 1, alert: nil, hubs: hubs)
        }
        // A resolution keeps the time the alert first fired.
        let firedAt = existing.firedAt ?? alert.firedAt.map(Timestamp.format)
        try updateAlert(
            id: existing.id, columns: AlertColumns(alert, hubs: hubs, firedAt: firedAt), deliveryId: delivery.id,
            at: now)
        try replaceAlertHubs(alertId: existing.id, hubs: hubs, replacing: true)
        try appendAlertEvents(
            "alert.changed", alert: alert, alertId: existing.id, hubs: hubs, previous: existing.condition,
            at: delivery)
        return IngestResult(
            deliveryId: delivery.id, alertId: existing.id, outcome: .changed, duplicateCount: existing.duplicateCount,
            alert: alert, hubs: hubs)
    }

    private func upsertOpaque(_ status: AlertStatus, reason: String, delivery: IncomingDelivery, ids: any IDSource)
        throws -> IngestResult
    {
        let key = DeliveryContent.opaqueAlertKey(status, sha256: delivery.sha256)
        if let existing = try alertHead(key: key) {
            try countDuplicateDelivery(alertId: existing.id, deliveryId: delivery.id)
            return IngestResult(
                deliveryId: delivery.id, alertId: existing.id, outcome: .duplicate,
                duplicateCount: existing.duplicateCount + 1, alert: nil, hubs: [])
        }
        let id = ids.next()
        try insertOpaqueAlert(
            id: id, key: key, status: status,
            details: JSONValue.object(["reason": .string(reason)]).canonicalString(), deliveryId: delivery.id,
            at: Timestamp.format(delivery.receivedAt))
        try append(
            EventDraft(
                type: "alert.\(status.rawValue)", at: delivery.receivedAt, actor: "azure-monitor",
                data: .object(["alertId": .string(id), "reason": .string(reason)])))
        let outcome: DeliveryOutcome = status == .malformed ? .malformed : .unrecognized
        return IngestResult(
            deliveryId: delivery.id, alertId: id, outcome: outcome, duplicateCount: 0, alert: nil, hubs: [])
    }

    private func appendAlertEvents(
        _ type: String, alert: NormalizedAlert, alertId: String, hubs: [HubReference], previous: AlertCondition?,
        at delivery: IncomingDelivery
    ) throws {
        var data: [String: JSONValue] = [
            "alertId": .string(alertId),
            "key": .string(alert.key),
            "rule": alert.rule.map(JSONValue.string) ?? .null,
            "kind": .string(alert.kind.rawValue),
            "condition": .string(alert.condition.rawValue),
        ]
        if let previous { data["previousCondition"] = .string(previous.rawValue) }
        if let stage = alert.serviceHealth?.stage { data["stage"] = .string(stage) }
        if let status = alert.resourceHealth?.currentHealthStatus { data["healthStatus"] = .string(status) }
        let targets: [HubReference?] = hubs.isEmpty ? [nil] : hubs
        for hub in targets {
            try append(
                EventDraft(
                    type: type, at: delivery.receivedAt, deploymentId: hub?.deploymentId, hub: hub?.hubId,
                    actor: "azure-monitor", data: .object(data)))
        }
    }
}

extension DeliveryContent {
    /// The key of the alert a delivery with this content and body hash is stored under: a
    /// recognised alert's own key, an opaque body's status and hash (so the same bytes again are
    /// its duplicate).
    public func alertKey(sha256: String) -> String {
        switch self {
        case .alert(let alert, _): alert.key
        case .unrecognized: Self.opaqueAlertKey(.unrecognized, sha256: sha256)
        case .malformed: Self.opaqueAlertKey(.malformed, sha256: sha256)
        }
    }

    static func opaqueAlertKey(_ status: AlertStatus, sha256: String) -> String {
        "\(status.rawValue):\(sha256)"
    }
}

extension AlertView {
    /// An alert from its stored columns (JSON columns as text); the single-alert extras are added
    /// by the caller.
    public init(
        storedId id: String, key: String, status: String, azureAlertId: String?, rule: String?, severity: String?,
        signalType: String?, monitoringService: String?, schema: String?, kind: String?, condition: String?,
        targetIds: String?, hubs: String?, firedAt: String?, resolvedAt: String?, observedAt: String?,
        description: String?, isTest: Bool, details: String?, deliveryCount: Int, duplicateCount: Int,
        createdAt: String, updatedAt: String
    ) {
        let details = details.flatMap(JSONValue.parse)
        let decoder = JSONDecoder()
        func decode<T: Decodable>(_ type: T.Type, _ value: JSONValue?) -> T? {
            guard let value, value != .null else { return nil }
            return try? decoder.decode(T.self, from: value.canonicalData())
        }
        self.init(
            id: id, key: key, status: AlertStatus(rawValue: status) ?? .recognized, azureAlertId: azureAlertId,
            rule: rule, severity: severity, signalType: signalType, monitoringService: monitoringService,
            schema: schema, kind: kind, condition: condition.flatMap(AlertCondition.init(rawValue:)),
            targetResourceIds: decode([String].self, targetIds.flatMap(JSONValue.parse)) ?? [],
            hubs: decode([HubReference].self, hubs.flatMap(JSONValue.parse)) ?? [], firedAt: firedAt,
            resolvedAt: resolvedAt, observedAt: observedAt, description: description, isTest: isTest,
            serviceHealth: decode(ServiceHealthDetails.self, details?["serviceHealth"]),
            resourceHealth: decode(ResourceHealthDetails.self, details?["resourceHealth"]),
            reason: details?["reason"]?.stringValue, deliveryCount: deliveryCount, duplicateCount: duplicateCount,
            createdAt: createdAt, updatedAt: updatedAt)
    }

    /// The raw body of the latest delivery: JSON as it is, anything else as base64.
    public mutating func attachRaw(_ body: Data) {
        if let json = try? JSONValue.decode(body) {
            raw = json
        } else {
            rawBase64 = body.base64EncodedString()
        }
    }
}

/// Columns that hold JSON text, on every store.
public enum JSONColumns {
    /// A JSON array of strings; anything else reads as empty.
    public static func strings(_ text: String?) -> [String] {
        (text.flatMap(JSONValue.parse)?.arrayValue ?? []).compactMap(\.stringValue)
    }
}

/// Columns both stores keep as text: timestamps (`Timestamp.format`) and enumerations.
public enum StoredColumns {
    /// A stored timestamp; one that does not parse is a damaged row, reported with its column.
    public static func date(_ text: String, column: String) throws -> Date {
        guard let date = Timestamp.parse(text) else { throw DamagedRow(column: column, value: text) }
        return date
    }

    public static func optionalDate(_ text: String?, column: String) throws -> Date? {
        try text.map { try date($0, column: column) }
    }

    /// A stored enumeration value; one this build does not know is a damaged row.
    public static func value<T: RawRepresentable<String>>(_ text: String, column: String) throws -> T {
        guard let value = T(rawValue: text) else { throw DamagedRow(column: column, value: text) }
        return value
    }
}

/// A stored value this build cannot read back.
public struct DamagedRow: Error, CustomStringConvertible {
    public var column: String
    public var value: String
    public var description: String { "stored \(column) \"\(value)\" is not readable" }

    public init(column: String, value: String) {
        self.column = column
        self.value = value
    }
}
