import Foundation
import GRDB
import HTTPTypes
import HummingbirdTesting
import StandbyCore
import StandbyPrimitives
import StandbyServer
import StandbyTestSupport
import Synchronization
import Testing

@testable import StandbyApp
@testable import StandbyStore

@Suite("Training jobs and the resubmission queue")
struct ResubmissionTests {
    func registerJob(
        _ client: any TestClientProtocol, _ externalId: String, hub: String = "eastus-hub", status: String = "running",
        priority: Int = 0, token: String = TestStandby.reporterToken
    ) async throws -> TestResponse {
        try await client.send(
            .post, "/v1/jobs",
            json:
                #"{"externalId":"\#(externalId)","hub":"\#(hub)","spec":{"image":"trainer:1","args":["--epochs","3"]},"status":"\#(status)","priority":\#(priority)}"#,
            token: token)
    }

    func failOver(_ standby: TestStandby, _ client: any TestClientProtocol) async throws {
        for offset in [0.0, 10, 20] { try await standby.report(client, "eastus-hub", "failure", at: offset) }
    }

    @Test("registration is idempotent on externalId; different content conflicts; transitions are checked")
    func registration() async throws {
        let standby = TestStandby()
        try await standby.run { client, _ in
            let first = try await registerJob(client, "train-42")
            #expect(first.status == .created)
            #expect(first.json["status"] == .string("running"))
            let again = try await registerJob(client, "train-42")
            #expect(again.status == .ok)
            #expect(again.json["id"] == first.json["id"])
            #expect(try await registerJob(client, "train-42", hub: "westus-hub").status == .conflict)
            #expect(try await registerJob(client, "train-x", hub: "nowhere").status == .unprocessableContent)
            #expect(try await registerJob(client, "train-r", token: TestStandby.readerToken).status == .forbidden)
            let big = String(repeating: "x", count: 300 * 1024)
            let tooBig = try await client.send(
                .post, "/v1/jobs", json: #"{"externalId":"big","hub":"eastus-hub","spec":{"blob":"\#(big)"}}"#,
                token: TestStandby.operatorToken)
            #expect(tooBig.status == .unprocessableContent || tooBig.status == .contentTooLarge)
            let done = try await client.send(.patch, "/v1/jobs/train-42", json: #"{"status":"completed"}"#)
            #expect(done.json["status"] == .string("completed"))
            #expect(
                try await client.send(.patch, "/v1/jobs/train-42", json: #"{"status":"running"}"#).status == .conflict)
            #expect(try await client.send(.patch, "/v1/jobs/nope", json: #"{"status":"failed"}"#).status == .notFound)
            let listed = try await client.get("/v1/jobs?status=completed").json["items"]?.arrayValue
            #expect(listed?.count == 1)
        }
    }

    @Test("three failed reports to a claimed resubmission, over HTTP; only the right jobs are interrupted")
    func fullPath() async throws {
        let standby = TestStandby()
        try await standby.run { client, _ in
            _ = try await registerJob(client, "train-1", priority: 1)
            _ = try await registerJob(client, "train-2", priority: 5)
            _ = try await registerJob(client, "train-done", status: "completed")
            _ = try await registerJob(client, "train-west", hub: "westus-hub")
            try await failOver(standby, client)
            let jobs = try await client.get("/v1/jobs").json["items"]?.arrayValue ?? []
            let statuses = Dictionary(
                uniqueKeysWithValues: jobs.map {
                    ($0["externalId"]?.stringValue ?? "", $0["status"]?.stringValue ?? "")
                })
            #expect(
                statuses == [
                    "train-1": "interrupted", "train-2": "interrupted", "train-done": "completed",
                    "train-west": "running",
                ])
            let event = try await client.failoverEvents().first
            #expect(jobs.first { $0["externalId"] == .string("train-1") }?["interruptedBy"] == event?["id"])
            let claim = try await client.send(
                .post, "/v1/resubmissions/claim", json: #"{"worker":"w1","limit":10,"leaseSeconds":60}"#)
            #expect(claim.status == .ok)
            let items = claim.json["items"]?.arrayValue ?? []
            // Highest priority first.
            #expect(items.map { $0["externalId"]?.stringValue } == ["train-2", "train-1"])
            #expect(items.allSatisfy { $0["targetHub"] == .string("westus-hub") && $0["status"] == .string("leased") })
            #expect(items.first?["spec"]?["image"] == .string("trainer:1"))
            let id = try #require(items.first?["id"]?.stringValue)
            #expect(
                try await client.send(
                    .post, "/v1/resubmissions/\(id)/heartbeat", json: #"{"worker":"w1","leaseSeconds":120}"#
                ).status == .ok)
            #expect(
                try await client.send(
                    .post, "/v1/resubmissions/\(id)/complete", json: #"{"worker":"w2","newExternalId":"train-2b"}"#
                ).status == .conflict)
            let completed = try await client.send(
                .post, "/v1/resubmissions/\(id)/complete", json: #"{"worker":"w1","newExternalId":"train-2b"}"#)
            #expect(completed.json["status"] == .string("completed"))
            let newJob = try await client.get("/v1/jobs/train-2b").json
            #expect(newJob["hub"] == .string("westus-hub"))
            #expect(newJob["status"] == .string("running"))
            #expect(
                try await client.send(.post, "/v1/resubmissions/claim", json: #"{"worker":"w1","limit":10}"#).json[
                    "items"]?.arrayValue?.isEmpty == true)
        }
    }

    @Test("single-region: interrupted jobs wait unassigned until an operator retargets them")
    func singleRegionUnassigned() async throws {
        var configured = TestStandby()
        configured.deploymentsYAML = """
              - id: solo
                pattern: single-region
                hubs:
                  - { id: eastus-hub, region: eastus, regionName: East US, role: primary }
              - id: other
                pattern: single-region
                hubs:
                  - { id: westus-hub, region: westus, regionName: West US, role: primary }
            """
        let standby = configured
        try await standby.run { client, _ in
            _ = try await registerJob(client, "solo-1")
            try await failOver(standby, client)
            let items = try await client.get("/v1/resubmissions?status=unassigned").json["items"]?.arrayValue ?? []
            #expect(items.count == 1)
            #expect(
                try await client.send(.post, "/v1/resubmissions/claim", json: #"{"worker":"w"}"#).json["items"]?
                    .arrayValue?.isEmpty == true)
            let id = try #require(items.first?["id"]?.stringValue)
            #expect(
                try await client.send(.post, "/v1/resubmissions/\(id)/retry", json: #"{"targetHub":"westus-hub"}"#)
                    .status == .conflict)
            // The operator retargets within the deployment once the hub is back.
            let retried = try await client.send(
                .post, "/v1/resubmissions/\(id)/retry", json: #"{"targetHub":"eastus-hub"}"#)
            #expect(retried.json["status"] == .string("queued"))
            #expect(
                try await client.send(.post, "/v1/resubmissions/claim", json: #"{"worker":"w"}"#).json["items"]?
                    .arrayValue?.count == 1)
        }
    }

    @Test("fail → backoff → dead → operator retry; lease expiry redelivers; restart keeps the queue")
    func retriesAndLeases() async throws {
        let standby = TestStandby()
        let resubmissionId = try await standby.run { client, components -> String in
            _ = try await registerJob(client, "train-1")
            try await failOver(standby, client)
            let jobs = components.jobs
            var id = ""
            for attempt in 1...5 {
                let claimed = try await jobs.claim(worker: "w1", limit: 1, leaseSeconds: 30, now: standby.time.now())
                #expect(claimed.count == 1, "attempt \(attempt)")
                id = claimed.first?.id ?? ""
                let failed = try await jobs.fail(id: id, worker: "w1", error: "quota exceeded", now: standby.time.now())
                if attempt < 5 {
                    #expect(failed.status == .queued)
                    let delay = try #require(Timestamp.parse(failed.availableAt)).timeIntervalSince(standby.time.now())
                    let base = 5 * pow(2, Double(attempt - 1))
                    #expect(
                        delay >= base * 0.8 - 0.01 && delay <= base * 1.2 + 0.01,
                        "backoff \(delay) after attempt \(attempt)")
                    // Not claimable before its time.
                    #expect(
                        try await jobs.claim(worker: "w1", limit: 1, leaseSeconds: 30, now: standby.time.now()).isEmpty)
                    standby.time.advance(by: delay + 0.01)
                } else {
                    #expect(failed.status == .dead)
                    #expect(failed.lastError == "quota exceeded")
                }
            }
            let dead = try await client.get("/v1/resubmissions?status=dead").json["items"]?.arrayValue
            #expect(dead?.count == 1)
            let revived = try await client.send(.post, "/v1/resubmissions/\(id)/retry", json: "{}")
            #expect(revived.json["status"] == .string("queued"))
            #expect(revived.json["attempts"] == .number(0))
            // Lease expiry: w1 claims and goes silent; after the lease, w2 gets the item and w1 is refused.
            _ = try await jobs.claim(worker: "w1", limit: 1, leaseSeconds: 10, now: standby.time.now())
            #expect(try await jobs.claim(worker: "w2", limit: 1, leaseSeconds: 10, now: standby.time.now()).isEmpty)
            standby.time.advance(by: 11)
            #expect(try await jobs.reapExpiredLeases(now: standby.time.now()) == 1)
            let redelivered = try await jobs.claim(worker: "w2", limit: 1, leaseSeconds: 60, now: standby.time.now())
            #expect(redelivered.map(\.id) == [id])
            await #expect(throws: StoreError.self) {
                try await jobs.complete(id: id, worker: "w1", newExternalId: "late", now: standby.time.now())
            }
            return id
        }
        try await standby.run { client, _ in
            let items = try await client.get("/v1/resubmissions?status=leased").json["items"]?.arrayValue ?? []
            #expect(items.map { $0["id"]?.stringValue } == [resubmissionId])
            #expect(items.first?["leaseOwner"] == .string("w2"))
            let cancelled = try await client.send(
                .post, "/v1/resubmissions/\(resubmissionId)/cancel", json: #"{"reason":"no longer needed"}"#)
            #expect(cancelled.json["status"] == .string("cancelled"))
        }
    }

    @Test("concurrent claims from many tasks never hand one item to two workers")
    func concurrentClaims() async throws {
        let standby = TestStandby()
        try await standby.run { client, components in
            for index in 0..<120 { _ = try await registerJob(client, "job-\(index)", priority: index % 7) }
            try await failOver(standby, client)
            let now = standby.time.now()
            let jobs = components.jobs
            let claimed = try await withThrowingTaskGroup(of: [String].self) { group in
                for worker in 0..<16 {
                    group.addTask {
                        var mine: [String] = []
                        while true {
                            let batch = try await jobs.claim(worker: "w\(worker)", limit: 3, leaseSeconds: 60, now: now)
                            if batch.isEmpty { return mine }
                            mine += batch.map(\.id)
                        }
                    }
                }
                var all: [String] = []
                for try await ids in group { all += ids }
                return all
            }
            #expect(claimed.count == 120)
            #expect(Set(claimed).count == 120)
        }
    }

    @Test("replaying a failover event queues no second resubmission")
    func replayIsIdempotent() async throws {
        let standby = TestStandby()
        try await standby.run { client, _ in
            _ = try await registerJob(client, "train-1")
            try await failOver(standby, client)
        }
        let database = try StandbyDatabase(settings: DatabaseSettings(path: standby.databasePath))
        let (jobId, eventId) = try await database.pool.read { db in
            (
                try String.fetchOne(db, sql: "SELECT job_id FROM resubmissions")!,
                try String.fetchOne(db, sql: "SELECT failover_event_id FROM resubmissions")!
            )
        }
        // The job runs again (say, re-registered state) and the same failover event is replayed.
        let replay = FailoverPlan(
            id: eventId, deploymentId: "foundry-prod", kind: .failover, trigger: .window, fromHub: "eastus-hub",
            toHub: "westus-hub", reason: "replay", rule: "failure-threshold", evidence: [], actor: "standby",
            dryRun: false,
            commands: [], interruptedHubs: ["eastus-hub"], resubmitTo: "westus-hub", decidedAt: standby.time.now())
        try await database.pool.write { db in
            try db.execute(sql: "UPDATE training_jobs SET status = 'running' WHERE id = ?", arguments: [jobId])
            let transaction = database.transaction(db)
            for _ in 0..<2 {
                var events: [EventDraft] = []
                try JobQueue.interrupt(
                    for: replay, in: transaction, ids: TimeOrderedIDSource(), now: standby.time.now(),
                    maxAttempts: 5, events: &events)
                for event in events { try transaction.append(event) }
            }
        }
        let (count, queuedEvents) = try await database.pool.read { db in
            (
                try Int.fetchOne(db, sql: "SELECT count(*) FROM resubmissions") ?? 0,
                try Int.fetchOne(db, sql: "SELECT count(*) FROM events WHERE type = 'resubmission.queued'") ?? 0
            )
        }
        #expect(count == 1)
        #expect(queuedEvents == 1)
    }
}
