import Foundation
import GRDB
import StandbyApp
import StandbyCore
import StandbyPrimitives

// The `notifications` table: the outbox of messages to people, one row per event and receiver.

enum NotificationsTable {
    static func notification(_ row: Row) throws -> NotificationView {
        let details =
            JSONValue.parse(row["details"] as String)?.objectValue?.compactMapValues(\.stringValue) ?? [:]
        return NotificationView(
            id: row["id"], receiver: row["receiver"],
            event: try StoredColumns.value(row["event"], column: "event"), deploymentId: row["deployment_id"],
            incidentKey: row["incident_key"], action: try StoredColumns.value(row["action"], column: "action"),
            severity: try StoredColumns.value(row["severity"], column: "severity"), summary: row["summary"],
            details: details, occurredAt: row["occurred_at"],
            status: try StoredColumns.value(row["status"], column: "status"),
            attempts: row["attempts"], nextAttemptAt: row["next_attempt_at"], lastError: row["last_error"],
            deliveredAt: row["delivered_at"], createdAt: row["created_at"], updatedAt: row["updated_at"])
    }

    static func insert(_ notification: NotificationView, in db: Database) throws {
        try db.cachedStatement(
            sql: """
                INSERT INTO notifications
                    (id, receiver, event, deployment_id, incident_key, action, severity, summary, details,
                     occurred_at, status, attempts, next_attempt_at, created_at, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """
        ).execute(arguments: [
            notification.id, notification.receiver, notification.event.rawValue, notification.deploymentId,
            notification.incidentKey, notification.action.rawValue, notification.severity.rawValue,
            notification.summary,
            JSONValue.object(notification.details.mapValues(JSONValue.string)).canonicalString(),
            notification.occurredAt, notification.status.rawValue, notification.attempts,
            notification.nextAttemptAt, notification.createdAt, notification.updatedAt,
        ])
    }

    static func deliverable(now: Date, limit: Int, in db: Database) throws -> [NotificationView] {
        try Row.fetchAll(
            db,
            sql: """
                SELECT * FROM notifications n WHERE n.status = 'pending' AND n.next_attempt_at <= ?
                  AND NOT EXISTS (
                      SELECT 1 FROM notifications earlier
                      WHERE earlier.receiver = n.receiver AND earlier.incident_key = n.incident_key
                        AND earlier.status = 'pending' AND earlier.seq < n.seq)
                ORDER BY n.seq LIMIT ?
                """,
            arguments: [Timestamp.format(now), limit]
        ).map(notification)
    }

    static func page(status: NotificationStatus?, deploymentId: String?, page: PageRequest, in db: Database) throws
        -> Page<NotificationView>
    {
        var filter = SQLFilter()
        filter.add("status = ?", status?.rawValue)
        filter.add("deployment_id = ?", deploymentId)
        return try page.fetch(db, from: "notifications", filter: filter, ascending: false) { try notification($0) }
    }

    static func recordDelivered(id: String, at: Date, in db: Database) throws {
        let at = Timestamp.format(at)
        try db.execute(
            sql: """
                UPDATE notifications SET status = 'delivered', attempts = attempts + 1, delivered_at = ?,
                    next_attempt_at = NULL, last_error = NULL, updated_at = ?
                WHERE id = ? AND status = 'pending'
                """,
            arguments: [at, at, id])
    }

    static func recordFailure(id: String, error: String, nextAttemptAt: Date?, at: Date, in db: Database) throws {
        try db.execute(
            sql: """
                UPDATE notifications SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?,
                    status = CASE WHEN ? IS NULL THEN 'failed' ELSE status END, updated_at = ?
                WHERE id = ? AND status = 'pending'
                """,
            arguments: [
                error, nextAttemptAt.map(Timestamp.format), nextAttemptAt.map(Timestamp.format), Timestamp.format(at),
                id,
            ])
    }
}
