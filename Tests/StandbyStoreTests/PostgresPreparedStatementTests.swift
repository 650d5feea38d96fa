import Foundation
import StandbyApp
import StandbyCore
import StandbyPostgres
import StandbyPrimitives
import StandbyTestSupport
import Testing

/// The batch's multi-row writes run as prepared statements of their connection. A failure inside
/// one must still be the failing unit's alone, and a statement the server no longer has (its
/// connection gone) must be prepared again, not fail every write after it.
@Suite("PostgreSQL: the batch's prepared writes")
struct PostgresPreparedStatementTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    let east = HubReference(deploymentId: "prod", hubId: "east")

    func alertBody(_ rule: String) -> Data {
        JSONValue.object([
            "schemaId": .string("azureMonitorCommonAlertSchema"),
            "data": .object([
                "essentials": .object([
                    "alertId": .string("/subscriptions/s/providers/Microsoft.AlertsManagement/alerts/\(rule)"),
                    "alertRule": .string(rule), "severity": .string("Sev2"), "signalType": .string("Metric"),
                    "monitorCondition": .string("Fired"), "monitoringService": .string("Platform"),
                    "alertTargetIDs": .array([]), "firedDateTime": .string("2026-11-28T10:00:00.1234567Z"),
                ]),
                "alertContext": .object([:]),
            ]),
        ]).canonicalData()
    }

    /// Stores delivery `id` (a new alert of its own on the east hub) as the ingest does.
    func deliver(_ id: String, at offset: Double, to store: PostgresStore, ids: CountingIDs) async throws
        -> DeliveryOutcome
    {
        let body = alertBody("rule-\(id)")
        let delivery = IncomingDelivery(
            id: id, receivedAt: t0.addingTimeInterval(offset), remoteAddress: "10.0.0.1",
            contentType: "application/json", body: body)
        var content = DeliveryContent.classify(body, topology: Topology(deployments: []))
        if case .alert(let alert, _) = content { content = .alert(alert, hubs: [east]) }
        let classified = content
        let readAhead = ReadAhead(alertKeys: [content.alertKey(sha256: delivery.sha256)])
        return try await store.sharedWrite(lane: .interactive, weight: 1, readAhead: readAhead) { units in
            try units.transaction.storeDelivery(delivery, content: classified, ids: ids).outcome
        }
    }

    /// Holds the writer until every delivery of `ids` waits behind it, so that they share one
    /// batch; returns each one's outcome, or nil where it failed.
    func deliverTogether(_ ids: [String], at offset: Double, to store: PostgresStore, alertIDs: CountingIDs)
        async throws -> [String: DeliveryOutcome?]
    {
        let (gate, holding) = (DispatchSemaphore(value: 0), DispatchSemaphore(value: 0))
        return try await withThrowingTaskGroup(of: (String, DeliveryOutcome?).self) { group in
            group.addTask {
                try await store.sharedWrite(lane: .interactive, weight: 1) { _ in
                    holding.signal()
                    gate.wait()
                }
                return ("", nil)
            }
            defer { gate.signal() }
            await blocking { holding.wait() }
            for (index, id) in ids.enumerated() {
                group.addTask { (id, try? await deliver(id, at: offset + Double(index), to: store, ids: alertIDs)) }
            }
            try await waitUntil(timeout: .seconds(60)) { store.waitingWrites == ids.count }
            gate.signal()
            var outcomes: [String: DeliveryOutcome?] = [:]
            for try await (id, outcome) in group where !id.isEmpty { outcomes[id] = outcome }
            return outcomes
        }
    }

    func storedDeliveryIds(_ store: PostgresStore) async throws -> Set<String> {
        var query = AlertQuery()
        query.page = PageRequest(limit: 100)
        var ids: Set<String> = []
        for alert in try await store.list(query).items {
            for delivery in try #require(try await store.get(id: alert.id)).deliveries ?? [] { ids.insert(delivery.id) }
        }
        return ids
    }

    /// A migrated store on a database of its own whose connection has the batch's writes prepared
    /// (deliveries d1 and d2 stored in one batch), its settings, its alert ids, and what closes it.
    func storeWithPreparedWrites() async throws -> (PostgresStore, PostgresSettings, CountingIDs, ClosesOnRelease) {
        let settings = try await PostgresTestServer.freshDatabase()
        let store = try PostgresStore(settings: settings)
        let keepAlive = ClosesOnRelease(store)
        try await store.migrate()
        let alertIDs = CountingIDs(prefix: "alert")
        #expect(
            try await deliverTogether(["d1", "d2"], at: 0, to: store, alertIDs: alertIDs) == ["d1": .new, "d2": .new])
        return (store, settings, alertIDs, keepAlive)
    }

    @Test("a unit whose row the prepared insert refuses fails alone; the statement serves the next batches")
    func failureInsidePreparedInsertIsTheUnitsAlone() async throws {
        let (store, settings, alertIDs, keepAlive) = try await storeWithPreparedWrites()
        defer { withExtendedLifetime(keepAlive) {} }
        try await PostgresTestServer.execute(
            """
            CREATE FUNCTION refuse_poisoned() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.id = 'poisoned' THEN RAISE EXCEPTION 'refused by the test' USING ERRCODE = 'P0001'; END IF;
                RETURN NEW;
            END $$
            """, in: settings)
        try await PostgresTestServer.execute(
            "CREATE TRIGGER refuse_poisoned BEFORE INSERT ON deliveries FOR EACH ROW EXECUTE FUNCTION refuse_poisoned()",
            in: settings)
        let outcomes = try await deliverTogether(["d3", "poisoned", "d4"], at: 10, to: store, alertIDs: alertIDs)
        #expect(outcomes == ["d3": .new, "poisoned": nil, "d4": .new])
        // The statement that refused the row still serves the batches after it.
        #expect(
            try await deliverTogether(["d5", "d6"], at: 20, to: store, alertIDs: alertIDs) == ["d5": .new, "d6": .new])
        #expect(try await storedDeliveryIds(store) == ["d1", "d2", "d3", "d4", "d5", "d6"])
    }

    @Test("connections the server closed take their prepared statements with them; new ones prepare afresh")
    func preparedStatementsGoWithTheirConnection() async throws {
        let (store, settings, alertIDs, keepAlive) = try await storeWithPreparedWrites()
        defer { withExtendedLifetime(keepAlive) {} }
        // Every session of the store ends, and its prepared statements with it.
        try await PostgresTestServer.execute(
            """
            SELECT pg_terminate_backend(pid) FROM pg_stat_activity
            WHERE datname = current_database() AND pid <> pg_backend_pid()
            """, in: settings)
        // A write may meet a connection that broke (storage trouble, 503 to a client); the ones
        // after it run on new connections, which prepare the statements again.
        var recovered = false
        for attempt in 1...5 where !recovered {
            recovered =
                (try? await deliver("after-\(attempt)", at: Double(10 + attempt), to: store, ids: alertIDs)) == .new
        }
        #expect(recovered)
        #expect(
            try await deliverTogether(["d3", "d4"], at: 20, to: store, alertIDs: alertIDs) == ["d3": .new, "d4": .new])
        #expect(try await storedDeliveryIds(store).isSuperset(of: ["d1", "d2", "d3", "d4"]))
    }
}
