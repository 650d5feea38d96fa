import Foundation
import NIOCore
import PostgresNIO
import StandbyApp
import StandbyCore
import StandbyPrimitives

/// The ingest's row writes (deliveries, alerts and their hubs) kept in order until the shared
/// transaction needs them on the server, then sent as a few multi-row statements instead of one
/// round trip each. Nothing a unit of work reads depends on them being sent, except the alert
/// heads, which `head(key:stored:)` answers from the log over what the server had.
struct DeferredIngestWrites {
    enum Write {
        case insertAlert(AlertRow)
        case updateAlert(id: String, columns: AlertColumns, deliveryId: String, at: String)
        case countDuplicate(alertId: String, deliveryId: String)
        case alertHubs(alertId: String, hubs: [HubReference], replacing: Bool)
        case insertDelivery(DeliveryRow)
    }

    /// An alert's row as inserted: a recognised alert's columns, or an opaque body's few.
    struct AlertRow {
        var id: String
        var key: String
        var status: String
        var azureAlertId: String?
        var rule: String?
        var severity: String?
        var signalType: String?
        var monitoringService: String?
        var schema: String?
        var kind: String?
        var condition: String?
        var targetIds = "[]"
        var hubs = "[]"
        var firedAt: String?
        var resolvedAt: String?
        var observedAt: String?
        var description: String?
        var isTest = false
        var details: String?
        var stateFingerprint: String?
        var deliveryId: String
        var at: String

        var head: StoredAlertHead {
            StoredAlertHead(
                id: id, condition: condition.flatMap(AlertCondition.init(rawValue:)),
                stateFingerprint: stateFingerprint, observedAt: observedAt, firedAt: firedAt, duplicateCount: 0)
        }
    }

    struct DeliveryRow {
        var id: String
        var receivedAt: String
        var remoteAddress: String?
        var contentType: String?
        var body: Data
        var sha256: String
        var outcome: String
        var schema: String?
        var alertId: String
        var detail: String?
    }

    private(set) var writes: [Write] = []

    var count: Int { writes.count }

    mutating func append(_ write: Write) {
        writes.append(write)
    }

    /// Forgets the writes from `count` on (a unit of work rolled back).
    mutating func truncate(to count: Int) {
        writes.removeSubrange(count...)
    }

    /// The alert of `key` as this transaction sees it: what the server had (`stored`, read
    /// before any write of this transaction touched it), with the writes logged since.
    func head(key: String, stored: StoredAlertHead?) -> StoredAlertHead? {
        var head = stored
        for write in writes {
            switch write {
            case .insertAlert(let row) where row.key == key:
                head = row.head
            case .updateAlert(let id, let columns, _, _) where id == head?.id:
                head?.condition = AlertCondition(rawValue: columns.condition)
                head?.stateFingerprint = columns.stateFingerprint
                head?.observedAt = columns.observedAt
                head?.firedAt = columns.firedAt
            case .countDuplicate(let id, _) where id == head?.id:
                head?.duplicateCount += 1
            default:
                continue
            }
        }
        return head
    }

    /// The statements that apply `range` of the log, in an order that keeps every reference
    /// valid. The connection runs one statement per round trip, so the inserts that nothing else
    /// in the range reads go in one: the new alerts, the hubs added to alerts and the deliveries,
    /// as parts of one `WITH` (its parts see one snapshot, and the foreign keys are checked at
    /// its end, when the alerts are there). What must see those rows follows, one statement
    /// each: the changes of alerts (which may have been inserted just now), and the hubs of
    /// alerts whose hubs are replaced (deleted first, or the insert would skip rows it is about
    /// to lose).
    func statements(_ range: Range<Int>) -> [PostgresStatement] {
        plan(range).statements
    }

    /// The statements of `range` and then `query`, which must return only TEXT columns (it is
    /// prepared). When the inserts are the range's last statement they become its WITH parts, one
    /// round trip less. `query` is given the expression of how many rows they wrote, to read
    /// before anything else: PostgreSQL runs a WITH part the main query does not read only after
    /// the main query. With no inserts, or statements after them, it is given `0` and sent last.
    func statements(
        _ range: Range<Int>, endingWith query: (inout SQLStatement, _ rowsWritten: String) -> String
    ) -> [PostgresStatement] {
        let planned = plan(range)
        if let inserts = planned.inserts, planned.following.isEmpty { return [inserts.before(query)] }
        var last = SQLStatement(prepared: true)
        last.append(query(&last, "0"))
        return planned.statements + [last.statement]
    }

    /// A range's inserts: the parts of one statement, their values bound in `statement`.
    private struct Inserts {
        var statement = SQLStatement(prepared: true)
        var parts: [String] = []

        /// One statement: the last insert its main statement, the others its WITH parts.
        var alone: PostgresStatement {
            var statement = statement
            let with = parts.dropLast().enumerated().map { "inserted_\($0.offset + 1) AS (\($0.element))" }
            statement.append(with.isEmpty ? parts.last! : "WITH " + with.joined(separator: ", ") + " " + parts.last!)
            return statement.statement
        }

        /// `query` after every insert, as WITH parts that return a row per row they write.
        func before(_ query: (inout SQLStatement, _ rowsWritten: String) -> String) -> PostgresStatement {
            var statement = statement
            let names = parts.indices.map { "inserted_\($0 + 1)" }
            let with = zip(names, parts).map { "\($0) AS (\($1) RETURNING 1)" }
            let rowsWritten = names.map { "(SELECT count(*) FROM \($0))" }.joined(separator: " + ")
            statement.append("WITH " + with.joined(separator: ", ") + " " + query(&statement, rowsWritten))
            return statement.statement
        }
    }

    /// A range's writes as statements: the inserts, then what must see their rows.
    private struct Plan {
        var inserts: Inserts?
        var following: [PostgresStatement] = []

        var statements: [PostgresStatement] { (inserts.map { [$0.alone] } ?? []) + following }
    }

    private func plan(_ range: Range<Int>) -> Plan {
        guard !range.isEmpty else { return Plan() }
        var inserts: [AlertRow] = []
        var changes = OrderedChanges<String, AlertChange>()
        var hubs = OrderedChanges<String, HubsChange>()
        var deliveries: [DeliveryRow] = []
        for write in writes[range] {
            switch write {
            case .insertAlert(let row):
                inserts.append(row)
            case .updateAlert(let id, let columns, let deliveryId, let at):
                changes.update(id, default: AlertChange()) { $0.apply(columns, deliveryId: deliveryId, at: at) }
            case .countDuplicate(let id, let deliveryId):
                changes.update(id, default: AlertChange()) { $0.countDuplicate(deliveryId: deliveryId) }
            case .alertHubs(let id, let references, let replacing):
                hubs.update(id, default: HubsChange()) { $0.apply(references, replacing: replacing) }
            case .insertDelivery(let row):
                deliveries.append(row)
            }
        }
        func rows(_ items: [(key: String, value: HubsChange)]) -> [(alertId: String, hub: HubReference)] {
            items.flatMap { item in item.value.hubs.map { (alertId: item.key, hub: $0) } }
        }
        let added = rows(hubs.items.filter { !$0.value.replacing })
        let replaced = hubs.items.filter(\.value.replacing)

        // The same few texts batch after batch: prepared.
        var inserting = Inserts()
        if !inserts.isEmpty { inserting.parts.append(Self.insertAlerts(inserts, into: &inserting.statement)) }
        if !added.isEmpty { inserting.parts.append(Self.insertAlertHubs(added, into: &inserting.statement)) }
        if !deliveries.isEmpty {
            inserting.parts.append(Self.insertDeliveries(deliveries, into: &inserting.statement))
        }
        var queries: [PostgresStatement] = []
        let counted = changes.items.filter { $0.value.columns == nil }
        if !counted.isEmpty { queries.append(Self.countDeliveries(counted)) }
        for (id, change) in changes.items {
            if let columns = change.columns {
                queries.append(.once(Self.updateAlert(id: id, columns: columns, change: change)))
            }
        }
        if !replaced.isEmpty {
            queries.append(.once("DELETE FROM alert_hubs WHERE alert_id = ANY(\(replaced.map(\.key)))"))
            let replacing = rows(replaced)
            if !replacing.isEmpty {
                var statement = SQLStatement()
                let text = Self.insertAlertHubs(replacing, into: &statement)
                statement.append(text)
                queries.append(statement.statement)
            }
        }
        return Plan(inserts: inserting.parts.isEmpty ? nil : inserting, following: queries)
    }

    // MARK: Statements
    //
    // Each binds one array per column (`TextColumn` for text) and reads the rows back with
    // `unnestedRows`: a statement text that does not grow with the rows, and no bound on their number
    // from PostgreSQL's 65,535 placeholders. The inserts are written into a shared statement and
    // return their text, so that several can be parts of one.

    private static func insertAlerts(_ rows: [AlertRow], into statement: inout SQLStatement) -> String {
        func column(_ value: (AlertRow) -> String?) -> String { statement.bind(TextColumn(rows.map(value))) }
        let row = unnestedRows([
            "id": column(\.id), "alert_key": column(\.key), "status": column(\.status),
            "azure_alert_id": column(\.azureAlertId), "rule": column(\.rule), "severity": column(\.severity),
            "signal_type": column(\.signalType), "monitoring_service": column(\.monitoringService),
            "schema": column(\.schema), "kind": column(\.kind), "condition": column(\.condition),
            "target_ids": column(\.targetIds), "hubs": column(\.hubs), "fired_at": column(\.firedAt),
            "resolved_at": column(\.resolvedAt), "observed_at": column(\.observedAt),
            "description": column(\.description), "is_test": statement.bind(rows.map(\.isTest)),
            "details": column(\.details), "state_fingerprint": column(\.stateFingerprint),
            "delivery_id": column(\.deliveryId), "at": column(\.at),
        ])
        return """
            INSERT INTO alerts
                (id, alert_key, status, azure_alert_id, rule, severity, signal_type, monitoring_service, schema,
                 kind, condition, target_ids, hubs, fired_at, resolved_at, observed_at, description, is_test,
                 details, state_fingerprint, first_delivery_id, last_delivery_id, created_at, updated_at)
            SELECT id, alert_key, status, azure_alert_id, rule, severity, signal_type, monitoring_service, schema,
                kind, condition, target_ids, hubs, fired_at, resolved_at, observed_at, description, is_test,
                details, state_fingerprint, delivery_id, delivery_id, at, at
            FROM (\(row)) AS row
            """
    }

    /// Deliveries that changed nothing but the counts, for many alerts in one statement.
    private static func countDeliveries(_ items: [(key: String, value: AlertChange)]) -> PostgresStatement {
        var statement = SQLStatement()
        let counted = unnestedRows([
            "id": statement.bind(TextColumn(items.map(\.key))),
            "duplicates": statement.bind(items.map(\.value.duplicates)),
            "deliveries": statement.bind(items.map(\.value.deliveries)),
            "last_delivery_id": statement.bind(TextColumn(items.map(\.value.lastDeliveryId))),
        ])
        statement.append(
            """
            UPDATE alerts SET duplicate_count = alerts.duplicate_count + counted.duplicates,
                delivery_count = alerts.delivery_count + counted.deliveries,
                last_delivery_id = counted.last_delivery_id
            FROM (\(counted)) AS counted
            WHERE alerts.id = counted.id
            """)
        return statement.statement
    }

    private static func updateAlert(id: String, columns: AlertColumns, change: AlertChange) -> PostgresQuery {
        """
        UPDATE alerts SET condition = \(columns.condition), severity = COALESCE(\(columns.severity), severity),
            fired_at = \(columns.firedAt), resolved_at = \(columns.resolvedAt), observed_at = \(columns.observedAt),
            details = \(columns.details), state_fingerprint = \(columns.stateFingerprint), hubs = \(columns.hubs),
            target_ids = \(columns.targetIds), description = COALESCE(\(columns.description), description),
            duplicate_count = duplicate_count + \(change.duplicates), delivery_count = delivery_count + \(change.deliveries),
            last_delivery_id = \(change.lastDeliveryId), updated_at = \(change.updatedAt)
        WHERE id = \(id)
        """
    }

    private static func insertAlertHubs(
        _ rows: [(alertId: String, hub: HubReference)], into statement: inout SQLStatement
    ) -> String {
        let row = unnestedRows([
            "alert_id": statement.bind(TextColumn(rows.map(\.alertId))),
            "deployment_id": statement.bind(TextColumn(rows.map(\.hub.deploymentId))),
            "hub_id": statement.bind(TextColumn(rows.map(\.hub.hubId))),
        ])
        return """
            INSERT INTO alert_hubs (alert_id, deployment_id, hub_id)
            \(row)
            ON CONFLICT DO NOTHING
            """
    }

    private static func insertDeliveries(_ rows: [DeliveryRow], into statement: inout SQLStatement) -> String {
        func column(_ value: (DeliveryRow) -> String?) -> String { statement.bind(TextColumn(rows.map(value))) }
        let row = unnestedRows([
            "id": column(\.id), "received_at": column(\.receivedAt), "remote_address": column(\.remoteAddress),
            "content_type": column(\.contentType), "body": statement.bind(rows.map { ByteBuffer(bytes: $0.body) }),
            "sha256": column(\.sha256), "byte_count": statement.bind(rows.map(\.body.count)),
            "outcome": column(\.outcome), "schema": column(\.schema), "alert_id": column(\.alertId),
            "detail": column(\.detail),
        ])
        return """
            INSERT INTO deliveries
                (id, received_at, remote_address, content_type, body, sha256, byte_count, outcome, schema,
                 alert_id, detail)
            \(row)
            """
    }
}

/// What a range of the log does to one alert row: the latest state change, if any, and the
/// deliveries counted on it.
private struct AlertChange {
    var columns: AlertColumns?
    var duplicates = 0
    var deliveries = 0
    var lastDeliveryId = ""
    var updatedAt = ""

    mutating func apply(_ new: AlertColumns, deliveryId: String, at: String) {
        var merged = new
        // As the UPDATE does: a change without a severity or description keeps the one before.
        merged.severity = new.severity ?? columns?.severity
        merged.description = new.description ?? columns?.description
        columns = merged
        deliveries += 1
        lastDeliveryId = deliveryId
        updatedAt = at
    }

    mutating func countDuplicate(deliveryId: String) {
        duplicates += 1
        deliveries += 1
        lastDeliveryId = deliveryId
    }
}

/// What a range of the log does to one alert's hubs: replaced (the rows before deleted) or
/// added to, and the hubs to insert.
private struct HubsChange {
    var replacing = false
    var hubs: [HubReference] = []

    mutating func apply(_ new: [HubReference], replacing replace: Bool) {
        if replace {
            replacing = true
            hubs = []
        }
        for hub in new where !hubs.contains(hub) { hubs.append(hub) }
    }
}

/// Values by key in the order the keys first came.
private struct OrderedChanges<Key: Hashable, Value> {
    private(set) var items: [(key: Key, value: Value)] = []
    private var positions: [Key: Int] = [:]

    mutating func update(_ key: Key, default initial: Value, _ change: (inout Value) -> Void) {
        let position =
            positions[key]
            ?? {
                items.append((key, initial))
                positions[key] = items.count - 1
                return items.count - 1
            }()
        change(&items[position].value)
    }
}
