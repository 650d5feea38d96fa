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

    public func delivery(id: String) async throws -> StoredDelivery? {
        try await StoreError.mapping {
            try await database.pool.read { db in
                try Row.fetchOne(
                    db, sql: "SELECT id, received_at, remote_address, content_type, body FROM deliveries WHERE id = ?",
                    arguments: [id]
                ).map {
                    StoredDelivery(
                        id: $0["id"], receivedAt: $0["received_at"], remoteAddress: $0["remote_address"],
                        contentType: $0["content_type"], body: $0["body"])
                }
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
                    view.attachRaw(body)
                }
                return view
            }
        }
    }

    static func view(_ row: Row) -> AlertView {
        AlertView(
            storedId: row["id"], key: row["alert_key"], status: row["status"], azureAlertId: row["azure_alert_id"],
            rule: row["rule"], severity: row["severity"], signalType: row["signal_type"],
            monitoringService: row["monitoring_service"], schema: row["schema"], kind: row["kind"],
            condition: row["condition"], targetIds: row["target_ids"], hubs: row["hubs"], firedAt: row["fired_at"],
            resolvedAt: row["resolved_at"], observedAt: row["observed_at"], description: row["description"],
            isTest: row["is_test"], details: row["details"], deliveryCount: row["delivery_count"],
            duplicateCount: row["duplicate_count"], createdAt: row["created_at"], updatedAt: row["updated_at"])
    }
}

/// The ingest's row operations on SQLite, inside the unit of work's transaction.
extension SQLiteTransaction: AlertRecords {
    func alertHead(key: String) throws -> StoredAlertHead? {
        try Row.fetchOne(
            try db.cachedStatement(
                sql: """
                    SELECT id, condition, state_fingerprint, observed_at, fired_at, duplicate_count
                    FROM alerts WHERE alert_key = ?
                    """), arguments: [key]
        ).map {
            StoredAlertHead(
                id: $0["id"], condition: ($0["condition"] as String?).flatMap(AlertCondition.init(rawValue:)),
                stateFingerprint: $0["state_fingerprint"], observedAt: $0["observed_at"], firedAt: $0["fired_at"],
                duplicateCount: $0["duplicate_count"])
        }
    }

    func insertAlert(
        id: String, key: String, alert: NormalizedAlert, columns: AlertColumns, deliveryId: String, at: String
    ) throws {
        try db.cachedStatement(
            sql: """
                INSERT INTO alerts
                    (id, alert_key, status, azure_alert_id, rule, severity, signal_type, monitoring_service, schema,
                     kind, condition, target_ids, hubs, fired_at, resolved_at, observed_at, description, is_test,
                     details, state_fingerprint, first_delivery_id, last_delivery_id, created_at, updated_at)
                VALUES (?, ?, 'recognized', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """
        ).execute(arguments: [
            id, key, alert.azureAlertId, alert.rule, columns.severity, alert.signalType, alert.monitoringService,
            alert.schema.rawValue, alert.kind.rawValue, columns.condition, columns.targetIds, columns.hubs,
            columns.firedAt, alert.resolvedAt.map(Timestamp.format), columns.observedAt, columns.description,
            alert.isTest, columns.details, columns.stateFingerprint, deliveryId, deliveryId, at, at,
        ])
    }

    func insertOpaqueAlert(
        id: String, key: String, status: AlertStatus, details: String, deliveryId: String, at: String
    ) throws {
        try db.cachedStatement(
            sql: """
                INSERT INTO alerts (id, alert_key, status, details, first_delivery_id, last_delivery_id, created_at,
                    updated_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """
        ).execute(arguments: [id, key, status.rawValue, details, deliveryId, deliveryId, at, at])
    }

    func countDuplicateDelivery(alertId: String, deliveryId: String) throws {
        try db.cachedStatement(
            sql: """
                UPDATE alerts SET duplicate_count = duplicate_count + 1, delivery_count = delivery_count + 1,
                    last_delivery_id = ? WHERE id = ?
                """
        ).execute(arguments: [deliveryId, alertId])
    }

    func updateAlert(id: String, columns: AlertColumns, deliveryId: String, at: String) throws {
        try db.cachedStatement(
            sql: """
                UPDATE alerts SET condition = ?, severity = COALESCE(?, severity), fired_at = ?,
                    resolved_at = ?, observed_at = ?, details = ?, state_fingerprint = ?, hubs = ?, target_ids = ?,
                    description = COALESCE(?, description), delivery_count = delivery_count + 1,
                    last_delivery_id = ?, updated_at = ?
                WHERE id = ?
                """
        ).execute(arguments: [
            columns.condition, columns.severity, columns.firedAt, columns.resolvedAt, columns.observedAt,
            columns.details, columns.stateFingerprint, columns.hubs, columns.targetIds, columns.description,
            deliveryId, at, id,
        ])
    }

    func replaceAlertHubs(alertId: String, hubs: [HubReference], replacing: Bool) throws {
        if replacing {
            try db.cachedStatement(sql: "DELETE FROM alert_hubs WHERE alert_id = ?").execute(arguments: [alertId])
        }
        for hub in hubs {
            try db.cachedStatement(
                sql: "INSERT OR IGNORE INTO alert_hubs (alert_id, deployment_id, hub_id) VALUES (?, ?, ?)"
            ).execute(arguments: [alertId, hub.deploymentId, hub.hubId])
        }
    }

    func insertDelivery(
        _ delivery: IncomingDelivery, outcome: DeliveryOutcome, schema: String?, alertId: String, detail: String?
    ) throws {
        try db.cachedStatement(
            sql: """
                INSERT INTO deliveries
                    (id, received_at, remote_address, content_type, body, sha256, byte_count, outcome, schema,
                     alert_id, detail)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """
        ).execute(arguments: [
            delivery.id, Timestamp.format(delivery.receivedAt), delivery.remoteAddress, delivery.contentType,
            delivery.body, delivery.sha256, delivery.body.count, outcome.rawValue, schema, alertId, detail,
        ])
    }
}
