import Foundation
import PostgresNIO
import StandbyApp
import StandbyCore
import StandbyPrimitives

// What happens around an incident, on PostgreSQL: expired commands, the API's maintenance windows
// and the notification outbox (the same tables and statements as SQLite's `Tables/` files).
extension PostgresTransaction {
    func overdueCommands(createdBefore: Date, limit: Int) throws -> [CommandView] {
        try rows(
            """
            SELECT * FROM commands WHERE status IN ('pending', 'delivered')
              AND created_at <= \(Timestamp.format(createdBefore))
            ORDER BY seq LIMIT \(limit)
            """
        ).map(Self.commandView)
    }

    func storeReadinessReport(_ report: ReadinessReportInput, receivedAt: Date, actor: String) throws -> String {
        try rows(
            """
            INSERT INTO readiness_reports
                (id, deployment_id, hub_id, check_name, status, detail, observed_at, received_at, actor)
            VALUES (\(report.id), \(report.deploymentId), \(report.hubId), \(report.check.rawValue),
                    \(report.status.rawValue), \(report.detail), \(Timestamp.format(report.observedAt)),
                    \(Timestamp.format(receivedAt)), \(actor))
            ON CONFLICT (hub_id, check_name, observed_at)
                DO UPDATE SET duplicate_count = readiness_reports.duplicate_count + 1
            RETURNING id
            """
        ).first?["id"] ?? report.id
    }

    func expireCommand(id: String, at: Date) throws {
        try execute(
            """
            UPDATE commands SET status = 'expired', updated_at = \(Timestamp.format(at))
            WHERE id = \(id) AND status IN ('pending', 'delivered')
            """)
    }

    // MARK: Maintenance windows

    /// In effect at `?`: started, and neither over nor ended early.
    private static let activeClause = "starts_at <= ? AND COALESCE(ended_at, ends_at) > ? AND ends_at > ?"

    static func maintenanceWindow(_ row: PGRow) throws -> MaintenanceWindow {
        MaintenanceWindow(
            id: try row["id"], deploymentId: try row["deployment_id"], hubs: JSONColumns.strings(try row["hubs"]),
            startsAt: try StoredColumns.date(try row["starts_at"], column: "starts_at"),
            endsAt: try StoredColumns.date(try row["ends_at"], column: "ends_at"), reason: try row["reason"],
            createdBy: try row["created_by"],
            createdAt: try StoredColumns.date(try row["created_at"], column: "created_at"),
            endedAt: try StoredColumns.optionalDate(try row["ended_at"], column: "ended_at"))
    }

    func maintenanceWindows(deploymentId: String?, active: Bool?, now: Date, page: PageRequest) throws
        -> Page<MaintenanceWindow>
    {
        var filter = SQLStatement()
        filter.filter("deployment_id = ?", deploymentId)
        if let active {
            filter.filter(active ? "(\(Self.activeClause))" : "NOT (\(Self.activeClause))", Timestamp.format(now))
        }
        return try page.fetch(self, from: "maintenance_windows", filter: filter, ascending: false) {
            try Self.maintenanceWindow($0)
        }
    }

    func maintenanceWindow(id: String) throws -> MaintenanceWindow? {
        try rows("SELECT * FROM maintenance_windows WHERE id = \(id)").first.map(Self.maintenanceWindow)
    }

    func activeMaintenanceWindows(deploymentId: String, at: Date) throws -> [MaintenanceWindow] {
        if let locked = lockedMaintenanceWindows(deploymentId: deploymentId, at: at) { return locked }
        var statement = SQLStatement()
        statement.filter("deployment_id = ?", deploymentId)
        statement.filter(Self.activeClause, Timestamp.format(at))
        statement.append("SELECT * FROM maintenance_windows\(statement.whereClause) ORDER BY seq")
        return try rows(statement.query).map(Self.maintenanceWindow)
    }

    func insertMaintenanceWindow(_ window: MaintenanceWindow, fingerprint: String) throws
        -> (window: MaintenanceWindow, created: Bool)
    {
        forgetLockedMaintenanceWindows()
        let inserted = try execute(
            """
            INSERT INTO maintenance_windows
                (id, fingerprint, deployment_id, hubs, starts_at, ends_at, reason, created_by, created_at)
            VALUES (\(window.id), \(fingerprint), \(window.deploymentId),
                    \(JSONValue.strings(window.hubs).canonicalString()), \(Timestamp.format(window.startsAt)),
                    \(Timestamp.format(window.endsAt)), \(window.reason), \(window.createdBy),
                    \(Timestamp.format(window.createdAt)))
            ON CONFLICT (fingerprint) DO NOTHING
            """)
        if inserted == 1 { return (window, true) }
        let existing = try rows(
            """
            UPDATE maintenance_windows SET duplicate_count = duplicate_count + 1
            WHERE fingerprint = \(fingerprint) RETURNING *
            """)
        guard let row = existing.first else { throw StoreError.conflict("maintenance window \(window.id) vanished") }
        return (try Self.maintenanceWindow(row), false)
    }

    func endMaintenanceWindow(id: String, at: Date) throws {
        forgetLockedMaintenanceWindows()
        let at = Timestamp.format(at)
        try execute(
            "UPDATE maintenance_windows SET ended_at = \(at) WHERE id = \(id) AND ended_at IS NULL AND ends_at > \(at)"
        )
    }

    // MARK: Drills

    func drill(id: String) throws -> DrillView? {
        try rows("SELECT body FROM drills WHERE id = \(id)").first.map { try DrillView.decoded(try $0["body"]) }
    }

    func drills(deploymentId: String?, page: PageRequest) throws -> Page<DrillView> {
        var filter = SQLStatement()
        filter.filter("deployment_id = ?", deploymentId)
        return try page.fetch(self, from: "drills", filter: filter, ascending: false) {
            try DrillView.decoded(try $0["body"])
        }
    }

    func saveDrill(_ drill: DrillView) throws {
        try execute(
            """
            INSERT INTO drills (id, deployment_id, status, body, created_at, updated_at)
            VALUES (\(drill.id), \(drill.deploymentId), \(drill.status.rawValue), \(try DrillView.encoded(drill)),
                    \(drill.createdAt), \(drill.updatedAt))
            ON CONFLICT (id) DO UPDATE SET status = excluded.status, body = excluded.body,
                updated_at = excluded.updated_at
            """)
    }

    // MARK: Notifications

    static func notification(_ row: PGRow) throws -> NotificationView {
        let details = JSONValue.parse(try row["details"] as String)?.objectValue?.compactMapValues(\.stringValue) ?? [:]
        return NotificationView(
            id: try row["id"], receiver: try row["receiver"],
            event: try StoredColumns.value(try row["event"], column: "event"), deploymentId: try row["deployment_id"],
            incidentKey: try row["incident_key"], action: try StoredColumns.value(try row["action"], column: "action"),
            severity: try StoredColumns.value(try row["severity"], column: "severity"), summary: try row["summary"],
            details: details, occurredAt: try row["occurred_at"],
            status: try StoredColumns.value(try row["status"], column: "status"), attempts: try row["attempts"],
            nextAttemptAt: try row["next_attempt_at"], lastError: try row["last_error"],
            deliveredAt: try row["delivered_at"], createdAt: try row["created_at"], updatedAt: try row["updated_at"])
    }

    func notifications(status: NotificationStatus?, deploymentId: String?, page: PageRequest) throws
        -> Page<NotificationView>
    {
        var filter = SQLStatement()
        filter.filter("status = ?", status?.rawValue)
        filter.filter("deployment_id = ?", deploymentId)
        return try page.fetch(self, from: "notifications", filter: filter, ascending: false) {
            try Self.notification($0)
        }
    }

    func deliverableNotifications(now: Date, limit: Int) throws -> [NotificationView] {
        try rows(
            """
            SELECT * FROM notifications n
            WHERE n.status = 'pending' AND n.next_attempt_at <= \(Timestamp.format(now))
              AND NOT EXISTS (
                  SELECT 1 FROM notifications earlier
                  WHERE earlier.receiver = n.receiver AND earlier.incident_key = n.incident_key
                    AND earlier.status = 'pending' AND earlier.seq < n.seq)
            ORDER BY n.seq LIMIT \(limit)
            """
        ).map(Self.notification)
    }

    func insertNotification(_ notification: NotificationView) throws {
        let details = JSONValue.object(notification.details.mapValues(JSONValue.string)).canonicalString()
        try execute(
            """
            INSERT INTO notifications
                (id, receiver, event, deployment_id, incident_key, action, severity, summary, details,
                 occurred_at, status, attempts, next_attempt_at, created_at, updated_at)
            VALUES (\(notification.id), \(notification.receiver), \(notification.event.rawValue),
                    \(notification.deploymentId), \(notification.incidentKey), \(notification.action.rawValue),
                    \(notification.severity.rawValue), \(notification.summary), \(details),
                    \(notification.occurredAt), \(notification.status.rawValue), \(notification.attempts),
                    \(notification.nextAttemptAt), \(notification.createdAt), \(notification.updatedAt))
            """)
    }

    func recordNotificationDelivered(id: String, at: Date) throws {
        let at = Timestamp.format(at)
        try execute(
            """
            UPDATE notifications SET status = 'delivered', attempts = attempts + 1, delivered_at = \(at),
                next_attempt_at = NULL, last_error = NULL, updated_at = \(at)
            WHERE id = \(id) AND status = 'pending'
            """)
    }

    func recordNotificationFailure(id: String, error: String, nextAttemptAt: Date?, at: Date) throws {
        let next = nextAttemptAt.map(Timestamp.format)
        try execute(
            """
            UPDATE notifications SET attempts = attempts + 1, last_error = \(error), next_attempt_at = \(next),
                status = CASE WHEN \(next)::text IS NULL THEN 'failed' ELSE status END,
                updated_at = \(Timestamp.format(at))
            WHERE id = \(id) AND status = 'pending'
            """)
    }
}
