import Foundation
import GRDB
import StandbyApp
import StandbyCore
import StandbyPrimitives

// The `health_reports` table: every report as it came, unique on (hub, source, observedAt).

enum HealthReportsTable {
    /// The stored report's id: this one's when new, the first one's for a duplicate (whose count
    /// goes up). RETURNING gives it in the same statement.
    static func store(_ report: HealthReportInput, receivedAt: Date, actor: String, in db: Database) throws -> String {
        try String.fetchOne(
            try db.cachedStatement(
                sql: """
                    INSERT INTO health_reports
                        (id, deployment_id, hub_id, source, outcome, observed_at, received_at, latency_ms, status_code,
                         detail, actor)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (hub_id, source, observed_at) DO UPDATE SET duplicate_count = duplicate_count + 1
                    RETURNING id
                    """),
            arguments: [
                report.id, report.deploymentId, report.hubId, report.source, report.outcome.rawValue,
                Timestamp.format(report.observedAt), Timestamp.format(receivedAt), report.latencyMs, report.statusCode,
                report.detail, actor,
            ]) ?? report.id
    }
}

// The `readiness_reports` table: every readiness report as it came, unique on (hub, check, observedAt).

enum ReadinessReportsTable {
    static func store(_ report: ReadinessReportInput, receivedAt: Date, actor: String, in db: Database) throws
        -> String
    {
        try String.fetchOne(
            db,
            sql: """
                INSERT INTO readiness_reports
                    (id, deployment_id, hub_id, check_name, status, detail, observed_at, received_at, actor)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (hub_id, check_name, observed_at) DO UPDATE SET duplicate_count = duplicate_count + 1
                RETURNING id
                """,
            arguments: [
                report.id, report.deploymentId, report.hubId, report.check.rawValue, report.status.rawValue,
                report.detail, Timestamp.format(report.observedAt), Timestamp.format(receivedAt), actor,
            ]) ?? report.id
    }
}
