import Foundation
import GRDB
import StandbyApp
import StandbyCore
import StandbyPrimitives

// The `drills` table: each practice run's record, as JSON beside its id, deployment and status.

enum DrillsTable {
    static func drill(_ row: Row) throws -> DrillView {
        try DrillView.decoded(row["body"])
    }

    static func drill(id: String, in db: Database) throws -> DrillView? {
        try Row.fetchOne(db, sql: "SELECT body FROM drills WHERE id = ?", arguments: [id]).map(drill)
    }

    static func page(deploymentId: String?, page: PageRequest, in db: Database) throws -> Page<DrillView> {
        var filter = SQLFilter()
        filter.add("deployment_id = ?", deploymentId)
        return try page.fetch(db, from: "drills", filter: filter, ascending: false) { try drill($0) }
    }

    static func save(_ drill: DrillView, in db: Database) throws {
        try db.execute(
            sql: """
                INSERT INTO drills (id, deployment_id, status, body, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT (id) DO UPDATE SET status = excluded.status, body = excluded.body,
                    updated_at = excluded.updated_at
                """,
            arguments: [
                drill.id, drill.deploymentId, drill.status.rawValue, try DrillView.encoded(drill), drill.createdAt,
                drill.updatedAt,
            ])
    }
}
