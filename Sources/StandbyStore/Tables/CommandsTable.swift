import Foundation
import GRDB
import StandbyApp
import StandbyCore
import StandbyPrimitives

// The `commands` table: the outbox. A command waits here until it is acknowledged.

extension CommandView: FetchableRecord {

    public enum Columns {
        public static let id = Column("id")
        public static let deploymentId = Column("deployment_id")
        public static let failoverEventId = Column("failover_event_id")
        public static let position = Column("position")
        public static let kind = Column("kind")
        public static let hub = Column("hub")
        public static let fromHub = Column("from_hub")
        public static let toHub = Column("to_hub")
        public static let parameters = Column("parameters")
        public static let status = Column("status")
        public static let createdAt = Column("created_at")
        public static let updatedAt = Column("updated_at")
        public static let ackOutcome = Column("ack_outcome")
        public static let ackDetail = Column("ack_detail")
        public static let ackActor = Column("ack_actor")
        public static let ackedAt = Column("acked_at")
        public static let deliveryAttempts = Column("delivery_attempts")
        public static let lastError = Column("last_error")
    }

    public init(row: Row) throws {
        let parameters =
            JSONValue.parse(row[Columns.parameters])?.objectValue?.compactMapValues(\.stringValue) ?? [:]
        self.init(
            id: row[Columns.id], deploymentId: row[Columns.deploymentId],
            failoverEventId: row[Columns.failoverEventId], position: row[Columns.position], kind: row[Columns.kind],
            hub: row[Columns.hub], fromHub: row[Columns.fromHub], toHub: row[Columns.toHub], parameters: parameters,
            status: CommandStatus(rawValue: row[Columns.status]) ?? .pending, createdAt: row[Columns.createdAt],
            updatedAt: row[Columns.updatedAt], ackOutcome: row[Columns.ackOutcome], ackDetail: row[Columns.ackDetail],
            ackActor: row[Columns.ackActor], ackedAt: row[Columns.ackedAt],
            deliveryAttempts: row[Columns.deliveryAttempts], lastError: row[Columns.lastError])
    }
}

enum CommandsTable {
    static func command(id: String, in db: Database) throws -> CommandView? {
        try CommandView.fetchOne(db, sql: "SELECT * FROM commands WHERE id = ?", arguments: [id])
    }

    static func commands(ofFailoverEvent eventId: String, in db: Database) throws -> [CommandView] {
        try CommandView.fetchAll(
            db, sql: "SELECT * FROM commands WHERE failover_event_id = ? ORDER BY position", arguments: [eventId])
    }

    static func statuses(ofFailoverEvent eventId: String, in db: Database) throws -> [CommandStatus] {
        try String.fetchAll(
            try db.cachedStatement(sql: "SELECT status FROM commands WHERE failover_event_id = ?"),
            arguments: [eventId]
        ).compactMap(CommandStatus.init(rawValue:))
    }

    static func insert(_ command: CommandPlan, of plan: FailoverPlan, position: Int, at: Date, in db: Database)
        throws
    {
        let at = Timestamp.format(at)
        try db.cachedStatement(
            sql: """
                INSERT INTO commands
                    (id, deployment_id, failover_event_id, position, kind, hub, from_hub, to_hub, parameters,
                     status, created_at, updated_at, next_attempt_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """
        ).execute(arguments: [
            command.id, plan.deploymentId, plan.id, position, command.kind.rawValue, command.hub,
            command.fromHub, command.toHub,
            JSONValue.object(command.parameters.mapValues(JSONValue.string)).canonicalString(),
            CommandStatus.initial(dryRun: plan.dryRun).rawValue, at, at, plan.dryRun ? nil : at,
        ])
    }

    /// The commands of a superseded event that were still waiting are superseded with it.
    static func supersede(ofFailoverEvent eventId: String, at: Date, in db: Database) throws {
        try db.cachedStatement(
            sql: """
                UPDATE commands SET status = 'superseded', updated_at = ?
                WHERE failover_event_id = ? AND status IN ('pending', 'delivered')
                """
        ).execute(arguments: [Timestamp.format(at), eventId])
    }

    static func recordAcknowledgement(
        commandId: String, outcome: CommandAckOutcome, detail: String?, actor: String, at: Date, in db: Database
    ) throws {
        let at = Timestamp.format(at)
        try db.cachedStatement(
            sql: """
                UPDATE commands SET status = ?, ack_outcome = ?, ack_detail = ?, ack_actor = ?, acked_at = ?,
                    updated_at = ? WHERE id = ?
                """
        ).execute(arguments: [outcome.rawValue, outcome.rawValue, detail, actor, at, at, commandId])
    }

    static func countDuplicateAcknowledgement(commandId: String, in db: Database) throws {
        try db.cachedStatement(sql: "UPDATE commands SET ack_duplicates = ack_duplicates + 1 WHERE id = ?").execute(
            arguments: [commandId])
    }

    static func recordPushDelivered(commandId: String, at: Date, in db: Database) throws {
        try db.execute(
            sql: """
                UPDATE commands SET delivery_attempts = delivery_attempts + 1, last_error = NULL,
                    status = CASE status WHEN 'pending' THEN 'delivered' ELSE status END, updated_at = ?
                WHERE id = ?
                """,
            arguments: [Timestamp.format(at), commandId])
    }

    static func recordPushFailure(commandId: String, error: String, nextAttemptAt: Date?, at: Date, in db: Database)
        throws
    {
        try db.execute(
            sql: """
                UPDATE commands SET delivery_attempts = delivery_attempts + 1, last_error = ?,
                    next_attempt_at = ?, updated_at = ? WHERE id = ? AND status = 'pending'
                """,
            arguments: [error, nextAttemptAt.map(Timestamp.format), Timestamp.format(at), commandId])
    }

    static func deliverable(deploymentIds: [String], now: Date, limit: Int, in db: Database) throws -> [CommandView] {
        let placeholders = Array(repeating: "?", count: deploymentIds.count).joined(separator: ", ")
        var arguments = StatementArguments(deploymentIds)
        arguments += [Timestamp.format(now), limit]
        return try CommandView.fetchAll(
            db,
            sql: """
                SELECT c.* FROM commands c
                WHERE c.status = 'pending' AND c.deployment_id IN (\(placeholders)) AND c.next_attempt_at <= ?
                  AND NOT EXISTS (
                      SELECT 1 FROM commands earlier
                      WHERE earlier.failover_event_id = c.failover_event_id AND earlier.position < c.position
                        AND earlier.status NOT IN ('delivered', 'succeeded'))
                ORDER BY c.seq LIMIT ?
                """,
            arguments: arguments)
    }

    /// Oldest first, the order the application layer must apply them in.
    static func page(status: CommandStatus?, deploymentId: String?, page: PageRequest, in db: Database) throws
        -> Page<CommandView>
    {
        var filter = SQLFilter()
        filter.add("status = ?", status?.rawValue)
        filter.add("deployment_id = ?", deploymentId)
        return try page.fetch(db, from: "commands", filter: filter, ascending: true) { try CommandView(row: $0) }
    }

    static func overdue(createdBefore: Date, limit: Int, in db: Database) throws -> [CommandView] {
        try CommandView.fetchAll(
            db,
            sql: """
                SELECT * FROM commands WHERE status IN ('pending', 'delivered') AND created_at <= ?
                ORDER BY seq LIMIT ?
                """,
            arguments: [Timestamp.format(createdBefore), limit])
    }

    static func expire(commandId: String, at: Date, in db: Database) throws {
        try db.execute(
            sql: """
                UPDATE commands SET status = 'expired', updated_at = ?
                WHERE id = ? AND status IN ('pending', 'delivered')
                """,
            arguments: [Timestamp.format(at), commandId])
    }

    static func countsByStatus(in db: Database) throws -> [String: Int] {
        Dictionary(
            uniqueKeysWithValues: try Row.fetchAll(db, sql: "SELECT status, count(*) AS n FROM commands GROUP BY 1")
                .map { ($0["status"] as String, $0["n"] as Int) })
    }
}
