import Foundation
import StandbyApp
import StandbyCore
import StandbyPostgres
import StandbyPrimitives
import StandbyStore
import StandbyTestSupport
import Testing

/// The stores the contract runs against. Each store of Standby runs the same suite, the way a
/// database library runs one suite against every driver.
enum StoreUnderTest: String, CaseIterable, CustomTestStringConvertible {
    case sqlite
    /// A database of its own on the test server (`scripts/postgres.sh`).
    case postgres

    var testDescription: String { rawValue }

    /// A fresh, migrated store, and what keeps it alive (its folder, or its connections until closed).
    func make() async throws -> (store: any ControlStore, keepAlive: AnyObject) {
        switch self {
        case .sqlite:
            let folder = TemporaryFolder()
            let database = try StandbyDatabase(settings: DatabaseSettings(path: folder.path("standby.sqlite")))
            try database.migrate()
            return (SQLiteControlStore(database: database), folder)
        case .postgres:
            let store = try PostgresStore(settings: try await PostgresTestServer.freshDatabase())
            // Held before migrating: a migration that fails still closes the connections.
            let keepAlive = ClosesOnRelease(store)
            try await store.migrate()
            return (store, keepAlive)
        }
    }
}

/// Shuts the store down when the test lets go of it.
final class ClosesOnRelease {
    let store: PostgresStore
    init(_ store: PostgresStore) { self.store = store }
    deinit { store.shutdown() }
}

struct Refusal: Error {}

@Suite("Store contract: what every ControlStore does")
struct StoreContractTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    let hub = HubReference(deploymentId: "prod", hubId: "east")

    func report(_ id: String, source: String = "probe", at: Date) -> HealthReportInput {
        HealthReportInput(
            id: id, deploymentId: "prod", hubId: "east", source: source, outcome: .failure, observedAt: at,
            latencyMs: 12, statusCode: 503, detail: nil)
    }

    func plan(_ id: String, commands: Int, dryRun: Bool = false) -> FailoverPlan {
        FailoverPlan(
            id: id, deploymentId: "prod", kind: .failover, trigger: .window, fromHub: "east", toHub: "west",
            reason: "east is DOWN", rule: "failure-threshold", evidence: ["report:1"], actor: "standby",
            dryRun: dryRun,
            commands: (0..<commands).map { position in
                CommandPlan(
                    id: "\(id)-c\(position)", kind: position == 0 ? .scaleCompute : .routeTraffic, hub: "west",
                    fromHub: "east", toHub: "west", parameters: ["position": "\(position)"])
            }, interruptedHubs: ["east"], resubmitTo: "west", decidedAt: t0)
    }

    @Test("a unit of work that throws leaves nothing behind", arguments: StoreUnderTest.allCases)
    func unitOfWorkIsAtomic(_ kind: StoreUnderTest) async throws {
        let (store, keepAlive) = try await kind.make()
        defer { withExtendedLifetime(keepAlive) {} }
        let now = t0
        let hub = self.hub
        let report = self.report("r1", at: t0)
        await #expect(throws: Refusal.self) {
            try await store.write { transaction in
                _ = try transaction.storeReport(report, receivedAt: now, actor: "test")
                var state = HubHealthState(deploymentId: hub.deploymentId, hubId: hub.hubId)
                state.healthSince = now
                try transaction.saveHubState(state, for: hub, at: now)
                throw Refusal()
            }
        }
        let stored = try await store.write { transaction in
            try transaction.storeReport(report, receivedAt: now, actor: "test")
        }
        #expect(stored == "r1")
        let state = try await store.read { reads in try reads.hubState(hub) }
        #expect(state.healthSince == nil)
    }

    @Test("a report again (same hub, source, observedAt) is the first one's", arguments: StoreUnderTest.allCases)
    func reportsAreIdempotent(_ kind: StoreUnderTest) async throws {
        let (store, keepAlive) = try await kind.make()
        defer { withExtendedLifetime(keepAlive) {} }
        let (now, first, again, other) = (
            t0, report("r1", at: t0), report("r2", at: t0), report("r3", source: "other", at: t0)
        )
        let ids = try await store.write { transaction in
            [
                try transaction.storeReport(first, receivedAt: now, actor: "test"),
                try transaction.storeReport(again, receivedAt: now, actor: "test"),
                try transaction.storeReport(other, receivedAt: now, actor: "test"),
            ]
        }
        #expect(ids == ["r1", "r1", "r3"])
    }

    @Test("tracker and routing state read back as saved; none saved reads as fresh", arguments: StoreUnderTest.allCases)
    func stateRoundTrips(_ kind: StoreUnderTest) async throws {
        let (store, keepAlive) = try await kind.make()
        defer { withExtendedLifetime(keepAlive) {} }
        let (now, hub) = (t0, self.hub)
        let fresh = try await store.read { reads in (try reads.hubState(hub), try reads.deploymentState("prod")) }
        #expect(fresh.0 == HubHealthState(deploymentId: "prod", hubId: "east"))
        #expect(fresh.1 == nil)
        var state = HubHealthState(deploymentId: "prod", hubId: "east")
        state.healthSince = now
        let deployment = DeploymentDefinition(
            id: "prod", pattern: .activePassive,
            hubs: ["east", "west"].map {
                HubDefinition(
                    id: $0, region: $0, regionName: $0, role: $0 == "east" ? .primary : .secondary, endpoint: "",
                    resources: [])
            }, policy: Policy())
        var routing = DeploymentState.initial(for: deployment)
        routing.serving = ["west"]
        routing.paused = true
        routing.pausedReason = "maintenance"
        try await store.write { [state, routing] transaction in
            try transaction.saveHubState(state, for: hub, at: now)
            try transaction.saveDeploymentState(routing, deploymentId: "prod", at: now)
        }
        let saved = try await store.read { reads in (try reads.hubState(hub), try reads.deploymentState("prod")) }
        #expect(saved.0 == state)
        #expect(saved.1 == routing)
    }

    @Test(
        "a failover event holds its commands in order; settling touches only an open event; superseding ends its waiting commands",
        arguments: StoreUnderTest.allCases)
    func failoverEventsAndTheOutbox(_ kind: StoreUnderTest) async throws {
        let (store, keepAlive) = try await kind.make()
        defer { withExtendedLifetime(keepAlive) {} }
        let now = t0
        let (first, second) = (plan("e1", commands: 2), plan("e2", commands: 1))
        try await store.write { transaction in
            try transaction.insertFailoverEvent(first, status: .open, at: now)
        }
        let event = try #require(try await store.read { reads in try reads.failoverEvent(id: "e1") })
        #expect(event.status == .open)
        #expect(event.commands.map(\.id) == ["e1-c0", "e1-c1"])
        #expect(event.commands.allSatisfy { $0.status == .pending })
        // Only the first command of an event leaves until it is delivered.
        let deliverable = try await store.read { reads in
            try reads.deliverableCommands(deploymentIds: ["prod"], now: now, limit: 10)
        }
        #expect(deliverable.map(\.id) == ["e1-c0"])
        try await store.write { transaction in
            try transaction.recordPushDelivered(commandId: "e1-c0", at: now)
            try transaction.recordAcknowledgement(
                commandId: "e1-c0", outcome: .succeeded, detail: nil, actor: "app", at: now)
        }
        let statuses = try await store.read { reads in try reads.commandStatuses(failoverEventId: "e1") }
        #expect(statuses.sorted { $0.rawValue < $1.rawValue } == [.pending, .succeeded])
        let acknowledged = try #require(try await store.read { reads in try reads.command(id: "e1-c0") })
        #expect(acknowledged.deliveryAttempts == 1)
        #expect(acknowledged.ackActor == "app")
        try await store.write { transaction in
            try transaction.supersedeFailoverEvent(id: "e1", at: now)
            try transaction.insertFailoverEvent(second, status: .open, at: now)
            // Already settled: settling again changes nothing.
            try transaction.settleFailoverEvent(id: "e1", status: .completed, at: now)
        }
        let superseded = try #require(try await store.read { reads in try reads.failoverEvent(id: "e1") })
        #expect(superseded.status == .superseded)
        #expect(superseded.commands.map(\.status) == [.succeeded, .superseded])
        let latest = try await store.read { reads in try reads.latestFailoverEvent(deploymentId: "prod") }
        #expect(latest?.id == "e2")
        let page = try await store.read { reads in
            try reads.failoverEvents(deploymentId: "prod", page: PageRequest(limit: 1))
        }
        #expect(page.items.map(\.id) == ["e2"])
        let rest = try await store.read { reads in
            try reads.failoverEvents(
                deploymentId: "prod", page: PageRequest(limit: 1, after: page.next.flatMap(PageRequest.decodeCursor)))
        }
        #expect(rest.items.map(\.id) == ["e1"])
        #expect(rest.next == nil)
    }

    @Test(
        "jobs: one resubmission per (job, failover event); available items by priority, then age",
        arguments: StoreUnderTest.allCases)
    func jobsAndTheQueue(_ kind: StoreUnderTest) async throws {
        let (store, keepAlive) = try await kind.make()
        defer { withExtendedLifetime(keepAlive) {} }
        let at = Timestamp.format(t0)
        let now = t0
        @Sendable func job(_ id: String, priority: Int) -> StoredJob {
            StoredJob(
                id: id, externalId: "ext-\(id)", deploymentId: "prod", hubId: "east", spec: "{}", specSHA256: "00",
                status: .running, priority: priority, submittedAt: nil, interruptedBy: nil, resubmittedFrom: nil,
                registeredBy: "test", createdAt: at, updatedAt: at)
        }
        @Sendable func item(_ id: String, job: StoredJob) -> StoredResubmission {
            StoredResubmission(
                id: id, jobId: job.id, failoverEventId: "e1", deploymentId: "prod", fromHub: "east",
                targetHub: "west", priority: job.priority, status: .queued, attempts: 0, maxAttempts: 5,
                availableAt: at, leaseOwner: nil, leaseExpiresAt: nil, lastError: nil, newJobId: nil, createdAt: at,
                updatedAt: at)
        }
        let (low, high) = (job("j1", priority: 0), job("j2", priority: 9))
        let queued = try await store.write { transaction in
            try transaction.insertJob(low)
            try transaction.insertJob(high)
            return [
                try transaction.insertResubmission(item("q1", job: low)),
                try transaction.insertResubmission(item("q2", job: high)),
                try transaction.insertResubmission(item("q3", job: low)),
            ]
        }
        #expect(queued == [true, true, false])
        let (running, byExternal, available) = try await store.write { transaction in
            (
                try transaction.runningJobs(hubId: "east").map(\.id),
                try transaction.job(externalId: "ext-j2")?.id,
                try transaction.availableResubmissions(now: now, limit: 10).map(\.id)
            )
        }
        #expect(running == ["j1", "j2"])
        #expect(byExternal == "j2")
        #expect(available == ["q2", "q1"])
        let expires = Timestamp.format(t0.addingTimeInterval(60))
        try await store.write { transaction in
            var leased = try #require(try transaction.resubmission(id: "q2"))
            leased.status = .leased
            leased.leaseOwner = "worker"
            leased.leaseExpiresAt = expires
            try transaction.saveResubmission(leased)
        }
        let later = t0.addingTimeInterval(120)
        let (expired, count, view) = try await store.write { transaction in
            (
                try transaction.expiredLeases(now: later).map(\.id), try transaction.expiredLeaseCount(now: later),
                try transaction.resubmissionView(id: "q2", withSpec: true)
            )
        }
        #expect(expired == ["q2"])
        #expect(count == 1)
        #expect(view?.externalId == "ext-j2")
        #expect(view?.spec == .object([:]))
        #expect(view?.leaseOwner == "worker")
    }

    @Test(
        "shared writes: a unit that throws is undone alone, its neighbours commit", arguments: StoreUnderTest.allCases)
    func sharedWritesFailAlone(_ kind: StoreUnderTest) async throws {
        let (store, keepAlive) = try await kind.make()
        defer { withExtendedLifetime(keepAlive) {} }
        let now = t0
        let reports = (0..<20).map { report("r\($0)", at: t0.addingTimeInterval(Double($0))) }
        let outcomes = await withTaskGroup(of: (Int, Bool).self) { group in
            for (index, report) in reports.enumerated() {
                group.addTask {
                    do {
                        _ = try await store.sharedWrite(lane: .interactive, weight: 1) { units in
                            _ = try units.transaction.storeReport(report, receivedAt: now, actor: "test")
                            try units.transaction.append(
                                EventDraft(type: "test.unit", at: now, actor: "test", data: .string(report.id)))
                            if index % 4 == 1 { throw Refusal() }
                        }
                        return (index, true)
                    } catch {
                        return (index, false)
                    }
                }
            }
            var outcomes: [Int: Bool] = [:]
            for await (index, succeeded) in group { outcomes[index] = succeeded }
            return outcomes
        }
        #expect(outcomes.filter(\.value).keys.sorted() == (0..<20).filter { $0 % 4 != 1 })
        // What the refused units stored was rolled back: the same reports under new ids are new
        // for them, and duplicates of the committed ones.
        let retried = (0..<20).map { index in
            var report = reports[index]
            report.id = "x\(index)"
            return report
        }
        let again = try await store.write { transaction in
            try retried.map { try transaction.storeReport($0, receivedAt: now, actor: "test") }
        }
        #expect(again == (0..<20).map { $0 % 4 == 1 ? "x\($0)" : "r\($0)" })
    }
}

/// Webhook deliveries written in one shared transaction, as an alert storm batches them, against
/// the same deliveries written one transaction each.
@Suite("Store contract: deliveries in one shared transaction")
struct SharedIngestContractTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    let east = HubReference(deploymentId: "prod", hubId: "east")
    let west = HubReference(deploymentId: "prod", hubId: "west")

    /// One delivery of the sequence: a body and the hubs its alert concerns, or a unit that
    /// stores its delivery and then fails.
    struct Step: Sendable {
        var body: Data
        var hubs: [HubReference]
        var refused = false
    }

    /// A common-schema metric alert of `rule`, as Azure sends it.
    func alert(_ rule: String, condition: String = "Fired", severity: String = "Sev2") -> Data {
        var essentials: [String: JSONValue] = [
            "alertId": .string("/subscriptions/s/providers/Microsoft.AlertsManagement/alerts/\(rule)"),
            "alertRule": .string(rule), "severity": .string(severity), "signalType": .string("Metric"),
            "monitorCondition": .string(condition), "monitoringService": .string("Platform"),
            "alertTargetIDs": .array([]), "firedDateTime": .string("2026-11-28T10:00:00.1234567Z"),
        ]
        if condition == "Resolved" { essentials["resolvedDateTime"] = .string("2026-11-28T10:05:00Z") }
        return JSONValue.object([
            "schemaId": .string("azureMonitorCommonAlertSchema"),
            "data": .object(["essentials": .object(essentials), "alertContext": .object([:])]),
        ]).canonicalData()
    }

    /// New, duplicate, changed, duplicate again, a second alert on two hubs whose hubs then
    /// change, a refused unit, bodies that are not alerts (one twice), and a late retry of the
    /// first state (stale).
    var steps: [Step] {
        [
            Step(body: alert("latency"), hubs: [east]),
            Step(body: alert("latency"), hubs: [east]),
            Step(body: alert("latency", condition: "Resolved", severity: "Sev3"), hubs: [east]),
            Step(body: alert("latency", condition: "Resolved", severity: "Sev3"), hubs: [east]),
            Step(body: alert("errors"), hubs: [east, west]),
            Step(body: alert("refused"), hubs: [east], refused: true),
            Step(body: alert("errors", condition: "Resolved"), hubs: [west]),
            Step(body: Data("not json at all".utf8), hubs: []),
            Step(body: Data(#"{"hello":"world"}"#.utf8), hubs: []),
            Step(body: Data("not json at all".utf8), hubs: []),
            Step(body: alert("latency"), hubs: [east]),
        ]
    }

    func write(_ step: Step, index: Int, to store: any ControlStore, ids: CountingIDs) async throws -> IngestResult {
        let delivery = IncomingDelivery(
            id: "d\(index)", receivedAt: t0.addingTimeInterval(Double(index)), remoteAddress: "10.0.0.\(index)",
            contentType: "application/json", body: step.body)
        var content = DeliveryContent.classify(step.body, topology: Topology(deployments: []))
        if case .alert(let alert, _) = content { content = .alert(alert, hubs: step.hubs) }
        let classified = content
        // As the ingest does: the alert's head is read ahead with the batch's (PostgreSQL).
        let readAhead = ReadAhead(alertKeys: [content.alertKey(sha256: delivery.sha256)])
        return try await store.sharedWrite(lane: .interactive, weight: 1, readAhead: readAhead) { units in
            let result = try units.transaction.storeDelivery(delivery, content: classified, ids: ids)
            if step.refused { throw Refusal() }
            return result
        }
    }

    func waitingWrites(_ store: any ControlStore) -> Int {
        if let store = store as? PostgresStore { return store.waitingWrites }
        let waiting = (store as! SQLiteControlStore).database.groupCommit.waiting
        return waiting.interactive + waiting.bulk
    }

    func repository(_ store: any ControlStore) -> any AlertRepository {
        (store as? PostgresStore) ?? SQLiteAlertRepository(database: (store as! SQLiteControlStore).database)
    }

    /// Every alert with its deliveries, oldest first.
    func stored(_ store: any ControlStore) async throws -> [AlertView] {
        let repository = repository(store)
        var query = AlertQuery()
        query.page = PageRequest(limit: 100)
        var alerts: [AlertView] = []
        for alert in try await repository.list(query).items.reversed() {
            alerts.append(try #require(try await repository.get(id: alert.id)))
        }
        return alerts
    }

    @Test(
        "a batch of new, repeated, changed and opaque deliveries with a refused unit stores what they store one by one",
        arguments: StoreUnderTest.allCases)
    func batchedDeliveriesMatchOneByOne(_ kind: StoreUnderTest) async throws {
        let steps = steps
        // One by one: each delivery its own transaction.
        let (alone, aloneKeepAlive) = try await kind.make()
        defer { withExtendedLifetime(aloneKeepAlive) {} }
        let aloneIDs = CountingIDs(prefix: "alert")
        var aloneOutcomes: [DeliveryOutcome?] = []
        for (index, step) in steps.enumerated() {
            aloneOutcomes.append(try? await write(step, index: index, to: alone, ids: aloneIDs).outcome)
        }
        // Batched: the first deliveries are stored before, so that the batch reads stored alerts
        // as well as its own; then a first write holds the writer until every other delivery
        // waits behind it, in order.
        let (batched, batchedKeepAlive) = try await kind.make()
        defer { withExtendedLifetime(batchedKeepAlive) {} }
        let batchedIDs = CountingIDs(prefix: "alert")
        let storedBefore = 3
        var before: [DeliveryOutcome?] = []
        for (index, step) in steps.prefix(storedBefore).enumerated() {
            before.append(try? await write(step, index: index, to: batched, ids: batchedIDs).outcome)
        }
        let (gate, holding) = (DispatchSemaphore(value: 0), DispatchSemaphore(value: 0))
        let batchedOutcomes = try await withThrowingTaskGroup(of: (Int, DeliveryOutcome?).self) { group in
            group.addTask {
                try await batched.sharedWrite(lane: .interactive, weight: 1) { _ in
                    holding.signal()
                    gate.wait()
                }
                return (-1, nil)
            }
            // Whatever happens, the writer is let go, so that the group can end.
            defer { gate.signal() }
            await blocking { holding.wait() }
            for (index, step) in steps.enumerated().dropFirst(storedBefore) {
                try await waitUntil(timeout: .seconds(60)) { waitingWrites(batched) == index - storedBefore }
                group.addTask { (index, try? await write(step, index: index, to: batched, ids: batchedIDs).outcome) }
            }
            try await waitUntil(timeout: .seconds(60)) { waitingWrites(batched) == steps.count - storedBefore }
            gate.signal()
            var outcomes = before + [DeliveryOutcome?](repeating: nil, count: steps.count - storedBefore)
            for try await (index, outcome) in group where index >= 0 { outcomes[index] = outcome }
            return outcomes
        }
        #expect(
            aloneOutcomes == [
                .new, .duplicate, .changed, .duplicate, .new, nil, .changed, .malformed, .unrecognized, .duplicate,
                .stale,
            ])
        #expect(batchedOutcomes == aloneOutcomes)
        let expected = try await stored(alone)
        #expect(try await stored(batched) == expected)
        // What the outcomes imply, read back: the refused unit left nothing.
        #expect(expected.map(\.rule) == ["latency", "errors", nil, nil])
        #expect(expected.map(\.deliveryCount) == [5, 2, 2, 1])
        #expect(expected.map(\.duplicateCount) == [3, 0, 1, 0])
        #expect(expected[0].condition == .resolved)
        #expect(expected[0].severity == "Sev3")
        #expect(expected[0].deliveries?.map(\.id) == ["d0", "d1", "d2", "d3", "d10"])
        #expect(expected[1].hubs == [west])
        #expect(expected[1].condition == .resolved)
        #expect(expected[2].deliveries?.map(\.id) == ["d7", "d9"])
        #expect(try await repository(batched).delivery(id: "d5") == nil)
        let west = try await repository(batched).list(
            {
                var query = AlertQuery()
                query.hub = "west"
                return query
            }())
        #expect(west.items.map(\.rule) == ["errors"])
    }
}
