import Foundation
import GRDB
import StandbyApp
import StandbyCore
import StandbyPrimitives

// The `failover_events` table: every decided move, settled when its commands are.

enum FailoverEventsTable {
    static func event(id: String, in db: Database) throws -> FailoverEventView? {
        try Row.fetchOne(db, sql: "SELECT * FROM failover_events WHERE id = ?", arguments: [id]).map {
            try view($0, in: db)
        }
    }

    static func latest(deploymentId: String, in db: Database) throws -> FailoverEventView? {
        try Row.fetchOne(
            db, sql: "SELECT * FROM failover_events WHERE deployment_id = ? ORDER BY seq DESC LIMIT 1",
            arguments: [deploymentId]
        ).map { try view($0, in: db) }
    }

    static func page(deploymentId: String?, page: PageRequest, in db: Database) throws -> Page<FailoverEventView> {
        var filter = SQLFilter()
        filter.add("deployment_id = ?", deploymentId)
        return try page.fetch(db, from: "failover_events", filter: filter, ascending: false) { try view($0, in: db) }
    }

    static func insert(_ plan: FailoverPlan, status: FailoverEventStatus, at: Date, in db: Database) throws {
        let at = Timestamp.format(at)
        try db.cachedStatement(
            sql: """
                INSERT INTO failover_events
                    (id, deployment_id, kind, trigger, from_hub, to_hub, reason, rule, evidence, actor, dry_run, status,
                     created_at, settled_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """
        ).execute(arguments: [
            plan.id, plan.deploymentId, plan.kind.rawValue, plan.trigger.rawValue, plan.fromHub, plan.toHub,
            plan.reason, plan.rule, JSONValue.strings(plan.evidence).canonicalString(), plan.actor, plan.dryRun,
            status.rawValue, at, status == .open ? nil : at,
        ])
    }

    /// Settles an open event; one already settled keeps its status.
    static func settle(id: String, status: FailoverEventStatus, at: Date, in db: Database) throws {
        try db.cachedStatement(
            sql: "UPDATE failover_events SET status = ?, settled_at = ? WHERE id = ? AND status = 'open'"
        ).execute(arguments: [status.rawValue, Timestamp.format(at), id])
    }

    static func tallies(in db: Database) throws -> [StoredTallies.Failovers] {
        try Row.fetchAll(
            db, sql: "SELECT deployment_id, trigger, kind, count(*) AS n FROM failover_events GROUP BY 1, 2, 3"
        ).map {
            StoredTallies.Failovers(
                deploymentId: $0["deployment_id"], trigger: $0["trigger"], kind: $0["kind"], count: $0["n"])
        }
    }

    private static func view(_ row: Row, in db: Database) throws -> FailoverEventView {
        let id: String = row["id"]
        return FailoverEventView(
            id: id, deploymentId: row["deployment_id"], kind: row["kind"], trigger: row["trigger"],
            fromHub: row["from_hub"], toHub: row["to_hub"], reason: row["reason"], rule: row["rule"],
            evidence: JSONColumns.strings(row["evidence"]), actor: row["actor"], dryRun: row["dry_run"],
            status: FailoverEventStatus(rawValue: row["status"]) ?? .open, createdAt: row["created_at"],
            settledAt: row["settled_at"], commands: try CommandsTable.commands(ofFailoverEvent: id, in: db))
    }
}
