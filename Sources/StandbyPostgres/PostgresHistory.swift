import Foundation
import PostgresNIO
import StandbyApp
import StandbyCore
import StandbyPrimitives

/// The history and the alerts on PostgreSQL, read through the same ports as on SQLite.
extension PostgresStore: HistoryStore, AlertRepository {
    private static func filter(_ query: EventQuery) -> SQLStatement {
        var statement = SQLStatement()
        if !query.types.isEmpty { statement.filter("type = ANY(?)", query.types) }
        statement.filter("deployment_id = ?", query.deployment)
        statement.filter("hub = ?", query.hub)
        statement.filter("at >= ?", query.since.map(Timestamp.format))
        statement.filter("at < ?", query.until.map(Timestamp.format))
        return statement
    }

    static func event(_ row: PGRow) throws -> EventRecord {
        let dataText: String = try row["data"]
        return EventRecord(
            seq: Int64(try row["seq"] as Int), at: try row["at"], type: try row["type"],
            deploymentId: try row["deployment_id"], hub: try row["hub"], actor: try row["actor"],
            data: JSONValue.parse(dataText) ?? .string(dataText), prevHash: try row["prev_hash"],
            hash: try row["hash"])
    }

    public func list(_ query: EventQuery) async throws -> Page<EventRecord> {
        try await withTransaction(readOnly: true) { transaction in
            try query.page.fetch(transaction, from: "events", filter: Self.filter(query), ascending: true, Self.event)
        }
    }

    public func batch(_ query: EventQuery, afterSeq: Int64, batchSize: Int) async throws -> [EventRecord] {
        try await withTransaction(readOnly: true) { transaction in
            try PageRequest(limit: batchSize, after: afterSeq)
                .fetch(transaction, from: "events", filter: Self.filter(query), ascending: true, Self.event).items
        }
    }

    public func count(_ query: EventQuery) async throws -> Int {
        try await withTransaction(readOnly: true) { transaction in
            var statement = Self.filter(query)
            statement.append("SELECT count(*) AS n FROM events\(statement.whereClause)")
            return try transaction.rows(statement.query).first?["n"] ?? 0
        }
    }

    public func latestAnchor() async throws -> EventAnchor? {
        try await withTransaction(readOnly: true) { transaction in
            try transaction.rows("SELECT * FROM event_anchors ORDER BY seq DESC LIMIT 1").first.map {
                EventAnchor(
                    seq: Int64(try $0["seq"] as Int), hash: try $0["hash"], at: try $0["at"],
                    prunedBefore: try $0["pruned_before"], prunedCount: try $0["pruned_count"],
                    signature: try $0["signature"])
            }
        }
    }

    public func newestEvent() async throws -> EventRecord? {
        try await withTransaction(readOnly: true) { transaction in
            try transaction.rows("SELECT * FROM events ORDER BY seq DESC LIMIT 1").first.map(Self.event)
        }
    }

    public func append(_ event: EventDraft) async throws {
        try await withTransaction { transaction in try transaction.append(event) }
    }

    public func prune(before: Date, signingKey: Secret?, now: Date) async throws -> PruneOutcome {
        try await withTransaction { transaction in
            let cutoff = Timestamp.format(before)
            var outcome = PruneOutcome()
            // The chain head's lock first: no event is appended while the prune decides what goes.
            _ = try transaction.rows("SELECT seq FROM chain_head WHERE id = 1 FOR UPDATE")
            guard
                let last = try transaction.rows(
                    "SELECT seq, hash, at FROM events WHERE at < \(cutoff) ORDER BY seq DESC LIMIT 1"
                ).first
            else { return outcome }
            let seq: Int = try last["seq"]
            let hash: String = try last["hash"]
            let at: String = try last["at"]
            outcome.events = try transaction.execute("DELETE FROM events WHERE seq <= \(seq)")
            // Delivery ids are time-ordered (UUIDv7 at receipt): the primary key finds the old ones.
            let bound = TimeOrderedID.lowerBound(at: before.addingTimeInterval(1))
            outcome.deliveries = try transaction.execute(
                "DELETE FROM deliveries WHERE id < \(bound) AND received_at < \(cutoff)")
            outcome.healthReports = try transaction.execute("DELETE FROM health_reports WHERE received_at < \(cutoff)")
            outcome.readinessReports = try transaction.execute(
                "DELETE FROM readiness_reports WHERE received_at < \(cutoff)")
            let signature = signingKey.map {
                EventAnchor.sign(seq: Int64(seq), hash: hash, prunedBefore: cutoff, key: $0)
            }
            try transaction.execute(
                """
                INSERT INTO event_anchors (seq, hash, at, pruned_before, pruned_count, created_at, signature)
                VALUES (\(seq), \(hash), \(at), \(cutoff), \(outcome.events), \(Timestamp.format(now)), \(signature))
                """)
            try transaction.append(
                Self.prunedEvent(
                    outcome, throughSeq: Int64(seq), before: cutoff, signed: signature != nil, at: now))
            return outcome
        }
    }

    // MARK: Alerts

    private static func alert(_ row: PGRow) throws -> AlertView {
        AlertView(
            storedId: try row["id"], key: try row["alert_key"], status: try row["status"],
            azureAlertId: try row["azure_alert_id"], rule: try row["rule"], severity: try row["severity"],
            signalType: try row["signal_type"], monitoringService: try row["monitoring_service"],
            schema: try row["schema"], kind: try row["kind"], condition: try row["condition"],
            targetIds: try row["target_ids"], hubs: try row["hubs"], firedAt: try row["fired_at"],
            resolvedAt: try row["resolved_at"], observedAt: try row["observed_at"],
            description: try row["description"], isTest: try row["is_test"], details: try row["details"],
            deliveryCount: try row["delivery_count"], duplicateCount: try row["duplicate_count"],
            createdAt: try row["created_at"], updatedAt: try row["updated_at"])
    }

    public func list(_ query: AlertQuery) async throws -> Page<AlertView> {
        try await withTransaction(readOnly: true) { transaction in
            var filter = SQLStatement()
            filter.filter("id IN (SELECT alert_id FROM alert_hubs WHERE hub_id = ?)", query.hub)
            filter.filter("id IN (SELECT alert_id FROM alert_hubs WHERE deployment_id = ?)", query.deployment)
            filter.filter("condition = ?", query.condition?.rawValue)
            filter.filter("status = ?", query.status?.rawValue)
            filter.filter("updated_at >= ?", query.since.map(Timestamp.format))
            filter.filter("updated_at < ?", query.until.map(Timestamp.format))
            return try query.page.fetch(transaction, from: "alerts", filter: filter, ascending: false, Self.alert)
        }
    }

    public func delivery(id: String) async throws -> StoredDelivery? {
        try await withTransaction(readOnly: true) { transaction in
            try transaction.rows(
                "SELECT id, received_at, remote_address, content_type, body FROM deliveries WHERE id = \(id)"
            ).first.map {
                let body: ByteBuffer = try $0["body"]
                return StoredDelivery(
                    id: try $0["id"], receivedAt: try $0["received_at"], remoteAddress: try $0["remote_address"],
                    contentType: try $0["content_type"], body: Data(body.readableBytesView))
            }
        }
    }

    public func get(id: String) async throws -> AlertView? {
        try await withTransaction(readOnly: true) { transaction in
            guard let row = try transaction.rows("SELECT * FROM alerts WHERE id = \(id)").first else { return nil }
            var view = try Self.alert(row)
            view.deliveries = try transaction.rows(
                """
                SELECT id, received_at, remote_address, content_type, outcome, sha256, byte_count
                FROM deliveries WHERE alert_id = \(id) ORDER BY received_at, seq
                """
            ).map {
                AlertDeliveryView(
                    id: try $0["id"], receivedAt: try $0["received_at"], remoteAddress: try $0["remote_address"],
                    contentType: try $0["content_type"],
                    outcome: DeliveryOutcome(rawValue: try $0["outcome"]) ?? .new, sha256: try $0["sha256"],
                    bytes: try $0["byte_count"])
            }
            let lastDelivery: String = try row["last_delivery_id"]
            if let body = try transaction.rows("SELECT body FROM deliveries WHERE id = \(lastDelivery)").first {
                let bytes: ByteBuffer = try body["body"]
                view.attachRaw(Data(bytes.readableBytesView))
            }
            return view
        }
    }
}
