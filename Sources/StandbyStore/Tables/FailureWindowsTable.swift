import Foundation
import GRDB
import StandbyApp
import StandbyCore
import StandbyPrimitives

// The `failure_windows` table: every window the tracker opened, open or closed.

enum FailureWindowsTable {
    static func save(_ window: FailureWindow, at: Date, in db: Database) throws {
        try db.cachedStatement(
            sql: """
                INSERT INTO failure_windows
                    (id, deployment_id, hub_id, opened_at, first_failure_at, last_failure_at, failure_count, sources,
                     evidence, declared_down_at, closed_at, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (id) DO UPDATE SET first_failure_at = excluded.first_failure_at,
                    last_failure_at = excluded.last_failure_at, failure_count = excluded.failure_count,
                    sources = excluded.sources, evidence = excluded.evidence,
                    declared_down_at = excluded.declared_down_at, closed_at = excluded.closed_at,
                    updated_at = excluded.updated_at
                """
        ).execute(arguments: [
            window.id, window.deploymentId, window.hubId, Timestamp.format(window.openedAt),
            Timestamp.format(window.firstFailureAt), Timestamp.format(window.lastFailureAt), window.failureCount,
            JSONValue.strings(window.sources).canonicalString(), JSONValue.strings(window.evidence).canonicalString(),
            window.declaredDownAt.map(Timestamp.format), window.closedAt.map(Timestamp.format), Timestamp.format(at),
        ])
    }

    static func page(hubId: String?, open: Bool?, page: PageRequest, in db: Database) throws -> Page<FailureWindowView>
    {
        var filter = SQLFilter()
        filter.add("hub_id = ?", hubId)
        if let open { filter.add(open ? "closed_at IS NULL" : "closed_at IS NOT NULL") }
        return try page.fetch(db, from: "failure_windows", filter: filter, ascending: false, view)
    }

    static func openTallies(in db: Database) throws -> [StoredTallies.OpenWindows] {
        try Row.fetchAll(
            db,
            sql:
                "SELECT deployment_id, hub_id, count(*) AS n FROM failure_windows WHERE closed_at IS NULL GROUP BY 1, 2"
        ).map { StoredTallies.OpenWindows(deploymentId: $0["deployment_id"], hubId: $0["hub_id"], count: $0["n"]) }
    }

    private static func view(_ row: Row) -> FailureWindowView {
        FailureWindowView(
            id: row["id"], deploymentId: row["deployment_id"], hubId: row["hub_id"],
            open: (row["closed_at"] as String?) == nil, openedAt: row["opened_at"],
            firstFailureAt: row["first_failure_at"], lastFailureAt: row["last_failure_at"],
            failureCount: row["failure_count"], sources: JSONColumns.strings(row["sources"]),
            evidence: JSONColumns.strings(row["evidence"]), declaredDownAt: row["declared_down_at"],
            closedAt: row["closed_at"])
    }
}
