import Foundation
import GRDB
import StandbyApp
import StandbyCore
import StandbyPrimitives

// The `maintenance_windows` table: windows declared through the API.

enum MaintenanceWindowsTable {
    static func window(_ row: Row) throws -> MaintenanceWindow {
        MaintenanceWindow(
            id: row["id"], deploymentId: row["deployment_id"], hubs: JSONColumns.strings(row["hubs"]),
            startsAt: try StoredColumns.date(row["starts_at"], column: "starts_at"),
            endsAt: try StoredColumns.date(row["ends_at"], column: "ends_at"), reason: row["reason"],
            createdBy: row["created_by"], createdAt: try StoredColumns.date(row["created_at"], column: "created_at"),
            endedAt: try StoredColumns.optionalDate(row["ended_at"], column: "ended_at"))
    }

    static func window(id: String, in db: Database) throws -> MaintenanceWindow? {
        try Row.fetchOne(db, sql: "SELECT * FROM maintenance_windows WHERE id = ?", arguments: [id]).map(window)
    }

    /// In effect at `now`: started, and neither over nor ended early.
    static let activeClause = "starts_at <= ? AND COALESCE(ended_at, ends_at) > ? AND ends_at > ?"

    static func active(deploymentId: String, at: Date, in db: Database) throws -> [MaintenanceWindow] {
        let now = Timestamp.format(at)
        return try Row.fetchAll(
            try db.cachedStatement(
                sql: "SELECT * FROM maintenance_windows WHERE deployment_id = ? AND \(activeClause) ORDER BY seq"),
            arguments: [deploymentId, now, now, now]
        ).map(window)
    }

    static func page(deploymentId: String?, active: Bool?, now: Date, page: PageRequest, in db: Database) throws
        -> Page<MaintenanceWindow>
    {
        var filter = SQLFilter()
        filter.add("deployment_id = ?", deploymentId)
        if let active {
            let now = Timestamp.format(now)
            filter.add(active ? "(\(activeClause))" : "NOT (\(activeClause))", values: [now, now, now])
        }
        return try page.fetch(db, from: "maintenance_windows", filter: filter, ascending: false) { try window($0) }
    }

    static func insert(_ window: MaintenanceWindow, fingerprint: String, in db: Database) throws
        -> (window: MaintenanceWindow, created: Bool)
    {
        if let existing = try Row.fetchOne(
            db, sql: "SELECT * FROM maintenance_windows WHERE fingerprint = ?", arguments: [fingerprint])
        {
            try db.execute(
                sql: "UPDATE maintenance_windows SET duplicate_count = duplicate_count + 1 WHERE fingerprint = ?",
                arguments: [fingerprint])
            return (try self.window(existing), false)
        }
        try db.execute(
            sql: """
                INSERT INTO maintenance_windows
                    (id, fingerprint, deployment_id, hubs, starts_at, ends_at, reason, created_by, created_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [
                window.id, fingerprint, window.deploymentId, JSONValue.strings(window.hubs).canonicalString(),
                Timestamp.format(window.startsAt), Timestamp.format(window.endsAt), window.reason, window.createdBy,
                Timestamp.format(window.createdAt),
            ])
        return (window, true)
    }

    static func end(id: String, at: Date, in db: Database) throws {
        try db.execute(
            sql: "UPDATE maintenance_windows SET ended_at = ? WHERE id = ? AND ended_at IS NULL AND ends_at > ?",
            arguments: [Timestamp.format(at), id, Timestamp.format(at)])
    }
}
