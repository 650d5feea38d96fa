import Foundation
import GRDB
import StandbyApp
import StandbyCore
import StandbyPrimitives

public struct SQLiteAlertRepository: AlertRepository {
    let database: StandbyDatabase
    let ids: any IDSource

    public init(database: StandbyDatabase, ids: any IDSource = TimeOrderedIDSource()) {
        self.database = database
        self.ids = ids
    }

    /// Stores the raw delivery and its alert inside the caller's write, with their history events.
    static func ingest(
        _ delivery: IncomingDelivery, content: DeliveryContent, in db: Database, chain: EventChain, head: ChainHead,
        ids: any IDSource
    ) throws -> IngestResult {
        let now = Timestamp.format(delivery.receivedAt)
        var result: IngestResult
        var schema: String?
        var detail: String?
        switch content {
        case .alert(let alert, let hubs):
            schema = alert.schema.rawValue
            result = try upsert(alert, hubs: hubs, delivery: delivery, in: db, chain: chain, head: head, ids: ids)
        case .unrecognized(let reason):
            detail = reason
            result = try upsertOpaque(
                .unrecognized, reason: reason, delivery: delivery, in: db, chain: chain, head: head, ids: ids)
        case .malformed(let reason):
            detail = reason
            result = try upsertOpaque(
                .malformed, reason: reason, delivery: delivery, in: db, chain: chain, head: head, ids: ids)
        }
        try db.cachedStatement(
            sql: """
                INSERT INTO deliveries
                    (id, received_at, remote_address, content_type, body, sha256, byte_count, outcome, schema,
                     alert_id, detail)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """
        ).execute(arguments: [
            delivery.id, now, delivery.remoteAddress, delivery.contentType, delivery.body, delivery.sha256,
            delivery.body.count, result.outcome.rawValue, schema, result.alertId, detail,
        ])
        try chain.append(
            EventDraft(
                type: "delivery.received", at: delivery.receivedAt, actor: "azure-monitor",
                data: .object([
                    "deliveryId": .string(delivery.id),
                    "alertId": .string(result.alertId),
                    "outcome": .string(result.outcome.rawValue),
                    "sha256": .string(delivery.sha256),
                    "bytes": .number(Double(delivery.body.count)),
                    "remoteAddress": delivery.remoteAddress.map(JSONValue.string) ?? .null,
                ])), in: db, head: head)
        return result
    }

    private static func upsert(
        _ alert: NormalizedAlert, hubs: [HubReference], delivery: IncomingDelivery, in db: Database,
        chain: EventChain, head: ChainHead, ids: any IDSource
    ) throws -> IngestResult {
        let now = Timestamp.format(delivery.receivedAt)
        let existing = try Row.fetchOne(
            try db.cachedStatement(
                sql:
                    "SELECT id, condition, state_fingerprint, observed_at, fired_at, duplicate_count FROM alerts WHERE alert_key = ?"
            ), arguments: [alert.key])
        guard let existing else {
            let id = ids.next()
            try db.cachedStatement(
                sql: """
                    INSERT INTO alerts
                        (id, alert_key, status, azure_alert_id, rule, severity, signal_type, monitoring_service, schema,
                         kind, condition, target_ids, hubs, fired_at, resolved_at, observed_at, description, is_test,
                         details, state_fingerprint, first_delivery_id, last_delivery_id, created_at, updated_at)
                    VALUES (?, ?, 'recognized', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """
            ).execute(arguments: [
                id, alert.key, alert.azureAlertId, alert.rule, alert.severity, alert.signalType,
                alert.monitoringService, alert.schema.rawValue, alert.kind.rawValue, alert.condition.rawValue,
                encodeTargets(alert.targetResourceIDs), encodeHubs(hubs), alert.firedAt.map(Timestamp.format),
                alert.resolvedAt.map(Timestamp.format), alert.observedAt.map(Timestamp.format), alert.description,
                alert.isTest, encodeDetails(alert), alert.stateFingerprint, delivery.id, delivery.id,
                now, now,
            ])
            try insertHubs(hubs, alertId: id, in: db)
            try appendAlertEvents(
                "alert.created", alert: alert, alertId: id, hubs: hubs, previous: nil,
                at: delivery.receivedAt, in: db, chain: chain, head: head)
            return IngestResult(
                deliveryId: delivery.id, alertId: id, outcome: .new, duplicateCount: 0, alert: alert, hubs: hubs)
        }
        let id: String = existing["id"]
        let storedObservedAt = (existing["observed_at"] as String?).flatMap(Timestamp.parse)
        let isStale = storedObservedAt.map { stored in alert.observedAt.map { $0 < stored } ?? false } ?? false
        if isStale || existing["state_fingerprint"] == alert.stateFingerprint {
            let duplicates: Int = existing["duplicate_count"] + 1
            try db.cachedStatement(
                sql: """
                    UPDATE alerts SET duplicate_count = duplicate_count + 1, delivery_count = delivery_count + 1,
                        last_delivery_id = ? WHERE id = ?
                    """
            ).execute(arguments: [delivery.id, id])
            return IngestResult(
                deliveryId: delivery.id, alertId: id, outcome: isStale ? .stale : .duplicate,
                duplicateCount: duplicates, alert: nil, hubs: hubs)
        }
        let previous = (existing["condition"] as String?).flatMap(AlertCondition.init(rawValue:))
        // A resolution keeps the time the alert first fired.
        let firedAt = (existing["fired_at"] as String?) ?? alert.firedAt.map(Timestamp.format)
        try db.cachedStatement(
            sql: """
                UPDATE alerts SET condition = ?, severity = COALESCE(?, severity), fired_at = ?,
                    resolved_at = ?, observed_at = ?, details = ?, state_fingerprint = ?, hubs = ?, target_ids = ?,
                    description = COALESCE(?, description), delivery_count = delivery_count + 1,
                    last_delivery_id = ?, updated_at = ?
                WHERE id = ?
                """
        ).execute(arguments: [
            alert.condition.rawValue, alert.severity, firedAt,
            alert.condition == .resolved ? alert.resolvedAt.map(Timestamp.format) : nil,
            alert.observedAt.map(Timestamp.format), encodeDetails(alert), alert.stateFingerprint,
            encodeHubs(hubs), encodeTargets(alert.targetResourceIDs), alert.description, delivery.id, now, id,
        ])
        try db.cachedStatement(sql: "DELETE FROM alert_hubs WHERE alert_id = ?").execute(arguments: [id])
        try insertHubs(hubs, alertId: id, in: db)
        try appendAlertEvents(
            "alert.changed", alert: alert, alertId: id, hubs: hubs, previous: previous,
            at: delivery.receivedAt, in: db, chain: chain, head: head)
        return IngestResult(
            deliveryId: delivery.id, alertId: id, outcome: .changed, duplicateCount: existing["duplicate_count"],
            alert: alert, hubs: hubs)
    }

    private static func upsertOpaque(
        _ status: AlertStatus, reason: String, delivery: IncomingDelivery, in db: Database, chain: EventChain,
        head: ChainHead,
        ids: any IDSource
    ) throws -> IngestResult {
        let key = "\(status.rawValue):\(delivery.sha256)"
        let now = Timestamp.format(delivery.receivedAt)
        if let existing = try Row.fetchOne(
            try db.cachedStatement(sql: "SELECT id, duplicate_count FROM alerts WHERE alert_key = ?"), arguments: [key])
        {
            let id: String = existing["id"]
            try db.cachedStatement(
                sql: """
                    UPDATE alerts SET duplicate_count = duplicate_count + 1, delivery_count = delivery_count + 1,
                        last_delivery_id = ? WHERE id = ?
                    """
            ).execute(arguments: [delivery.id, id])
            return IngestResult(
                deliveryId: delivery.id, alertId: id, outcome: .duplicate,
                duplicateCount: existing["duplicate_count"] + 1, alert: nil, hubs: [])
        }
        let id = ids.next()
        try db.cachedStatement(
            sql: """
                INSERT INTO alerts (id, alert_key, status, details, first_delivery_id, last_delivery_id, created_at,
                    updated_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """
        ).execute(arguments: [
            id, key, status.rawValue, JSONValue.object(["reason": .string(reason)]).canonicalString(),
            delivery.id, delivery.id, now, now,
        ])
        try chain.append(
            EventDraft(
                type: "alert.\(status.rawValue)", at: delivery.receivedAt, actor: "azure-monitor",
                data: .object(["alertId": .string(id), "reason": .string(reason)])), in: db, head: head)
        let outcome: DeliveryOutcome = status == .malformed ? .malformed : .unrecognized
        return IngestResult(
            deliveryId: delivery.id, alertId: id, outcome: outcome, duplicateCount: 0, alert: nil, hubs: [])
    }

    private static func insertHubs(_ hubs: [HubReference], alertId: String, in db: Database) throws {
        for hub in hubs {
            try db.cachedStatement(
                sql: "INSERT OR IGNORE INTO alert_hubs (alert_id, deployment_id, hub_id) VALUES (?, ?, ?)"
            ).execute(arguments: [alertId, hub.deploymentId, hub.hubId])
        }
    }

    private static func appendAlertEvents(
        _ type: String, alert: NormalizedAlert, alertId: String, hubs: [HubReference], previous: AlertCondition?,
        at: Date, in db: Database, chain: EventChain, head: ChainHead
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
            try chain.append(
                EventDraft(
                    type: type, at: at, deploymentId: hub?.deploymentId, hub: hub?.hubId, actor: "azure-monitor",
                    data: .object(data)), in: db, head: head)
        }
    }

    // MARK: Reading

    public func list(_ query: AlertQuery) async throws -> Page<AlertView> {
        try await StoreError.mapping {
            try await database.pool.read { db in
                var filter = SQLFilter()
                filter.add("id IN (SELECT alert_id FROM alert_hubs WHERE hub_id = ?)", query.hub)
                filter.add("id IN (SELECT alert_id FROM alert_hubs WHERE deployment_id = ?)", query.deployment)
                filter.add("condition = ?", query.condition?.rawValue)
                filter.add("status = ?", query.status?.rawValue)
                filter.add("updated_at >= ?", query.since.map(Timestamp.format))
                filter.add("updated_at < ?", query.until.map(Timestamp.format))
                return try query.page.fetch(db, from: "alerts", filter: filter, ascending: false, Self.view)
            }
        }
    }

    public func get(id: String) async throws -> AlertView? {
        try await StoreError.mapping {
            try await database.pool.read { db in
                guard
                    let row = try Row.fetchOne(
                        try db.cachedStatement(sql: "SELECT * FROM alerts WHERE id = ?"), arguments: [id])
                else {
                    return nil
                }
                var view = Self.view(row)
                let deliveries = try Row.fetchAll(
                    try db.cachedStatement(
                        sql: """
                            SELECT id, received_at, remote_address, content_type, outcome, sha256, byte_count
                            FROM deliveries WHERE alert_id = ? ORDER BY received_at, rowid
                            """), arguments: [id])
                view.deliveries = deliveries.map { delivery in
                    AlertDeliveryView(
                        id: delivery["id"], receivedAt: delivery["received_at"],
                        remoteAddress: delivery["remote_address"], contentType: delivery["content_type"],
                        outcome: DeliveryOutcome(rawValue: delivery["outcome"]) ?? .new, sha256: delivery["sha256"],
                        bytes: delivery["byte_count"])
                }
                let lastDelivery: String = row["last_delivery_id"]
                if let body = try Data.fetchOne(
                    try db.cachedStatement(sql: "SELECT body FROM deliveries WHERE id = ?"), arguments: [lastDelivery])
                {
                    if let json = try? JSONValue.decode(body) {
                        view.raw = json
                    } else {
                        view.rawBase64 = body.base64EncodedString()
                    }
                }
                return view
            }
        }
    }

    static func view(_ row: Row) -> AlertView {
        let details = (row["details"] as String?).flatMap(JSONValue.parse)
        let decoder = JSONDecoder()
        func decode<T: Decodable>(_ type: T.Type, _ value: JSONValue?) -> T? {
            guard let value, value != .null else { return nil }
            return try? decoder.decode(T.self, from: value.canonicalData())
        }
        let targets = decode([String].self, JSONValue.parse(row["target_ids"])) ?? []
        let hubs = decode([HubReference].self, JSONValue.parse(row["hubs"])) ?? []
        return AlertView(
            id: row["id"], key: row["alert_key"], status: AlertStatus(rawValue: row["status"]) ?? .recognized,
            azureAlertId: row["azure_alert_id"], rule: row["rule"], severity: row["severity"],
            signalType: row["signal_type"], monitoringService: row["monitoring_service"], schema: row["schema"],
            kind: row["kind"], condition: (row["condition"] as String?).flatMap(AlertCondition.init(rawValue:)),
            targetResourceIds: targets, hubs: hubs, firedAt: row["fired_at"], resolvedAt: row["resolved_at"],
            observedAt: row["observed_at"], description: row["description"], isTest: row["is_test"],
            serviceHealth: decode(ServiceHealthDetails.self, details?["serviceHealth"]),
            resourceHealth: decode(ResourceHealthDetails.self, details?["resourceHealth"]),
            reason: details?["reason"]?.stringValue, deliveryCount: row["delivery_count"],
            duplicateCount: row["duplicate_count"], createdAt: row["created_at"], updatedAt: row["updated_at"],
            deliveries: nil, raw: nil, rawBase64: nil)
    }

    private static func encodeTargets(_ targets: [ResourceID]) -> String {
        JSONValue.array(targets.map { .string($0.original) }).canonicalString()
    }

    private static func encodeHubs(_ hubs: [HubReference]) -> String {
        JSONValue.array(hubs.map { $0.jsonValue() }).canonicalString()
    }

    private static func encodeDetails(_ alert: NormalizedAlert) -> String? {
        var details: [String: JSONValue] = [:]
        if let serviceHealth = alert.serviceHealth { details["serviceHealth"] = JSONValue.encoding(serviceHealth) }
        if let resourceHealth = alert.resourceHealth { details["resourceHealth"] = JSONValue.encoding(resourceHealth) }
        return details.isEmpty ? nil : JSONValue.object(details).canonicalString()
    }
}
