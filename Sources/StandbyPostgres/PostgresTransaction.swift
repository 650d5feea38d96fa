import Foundation
import Logging
import NIOCore
import PostgresNIO
import StandbyApp
import StandbyCore
import StandbyPrimitives

/// A unit of work on one PostgreSQL connection, inside its transaction (or a read-only snapshot).
///
/// Serialising decisions without a single writer: before a unit reads a deployment's routing
/// state or one of its hubs' tracker state, it takes that deployment's transaction-scoped advisory
/// lock, so two instances applying signals to one deployment run one after the other and the
/// second reads what the first committed. Before deciding, a batch takes the locks of every
/// deployment it decides on at once, in sorted order (`prepareToDecide`), so two batches never
/// wait for each other; work that reaches a deployment on its own (a report, an operator) takes
/// its lock then, and should two such transactions deadlock, PostgreSQL aborts one and the store
/// runs it again.
///
/// One chain across instances: appended events are kept here and written by `flushEvents()` just
/// before the commit, under the lock of the `chain_head` row, always the last lock taken, so every
/// instance's events join one gapless chain. A shared batch reads the head with its deployments'
/// locks, so that chaining and committing take one round trip; otherwise the head is read at the
/// commit.
///
/// Fewer round trips in a shared transaction (`deferringWrites`): the ingest's row writes wait in
/// `DeferredIngestWrites` and a unit's savepoint is only sent when a statement must run inside it.
/// Until then undoing the unit is forgetting its logged writes and events. Before any other
/// statement, the logged writes are sent (each part after the savepoint it belongs in), so the
/// server holds everything a statement could read. A statement that fails outside a savepoint
/// sent for it leaves the transaction `poisoned`: the store then runs every unit alone, with
/// nothing deferred.
final class PostgresTransaction: ControlTransaction, AlertRecords, @unchecked Sendable {
    let connection: PostgresConnection
    /// The connection's prepared statements.
    let statements: PreparedStatements
    let logger: Logger
    let chain: EventChain
    let readOnly: Bool
    let deferringWrites: Bool
    /// Appended events, their chain-independent bytes written (`UnlinkedEvent`) as they come,
    /// so that only numbering and hashing is left for `flushEvents` under the chain head's lock.
    private var pendingEvents: [UnlinkedEvent] = []
    private var lockedDeployments: Set<String> = []
    private var savepoints: [Savepoint] = []
    private var deferred = DeferredIngestWrites()
    /// How much of `deferred` the server has.
    private var sentWrites = 0
    /// Alert heads as the server had them when this transaction first asked, by key.
    private var storedAlertHeads: [String: StoredAlertHead?] = [:]
    /// A statement failed where no savepoint could undo it: the server's transaction is lost.
    private(set) var poisoned = false
    /// Statements sent without waiting for their answers, in order, whether each ran inside a
    /// savepoint the server has, and the text of a prepared one.
    private var inFlight: [(answer: EventLoopFuture<StatementAnswer>, undoable: Bool, prepared: String?)] = []
    /// The rows of each deployment this transaction locked, read with the lock, as this
    /// transaction left them.
    private var lockedRows: [String: LockedDeploymentRows] = [:]

    /// The chain head as this transaction read it under the row's lock, taken with the
    /// deployments' locks before deciding (`prepareToDecide`): the events are then chained and
    /// the transaction committed in one round trip.
    private var chainHead: (seq: Int64, hash: String)?
    /// Hub tracker states saved by a shared transaction, not sent yet: they go in the commit's
    /// statement with the events (`flushEvents`), one round trip less while the deployments'
    /// locks are held; sent on their own before any other statement, so that it reads them.
    /// Every one was saved inside the innermost savepoint: one that begins sends those before it.
    private var hubSaves: [HubSave] = []

    private struct HubSave {
        var hub: HubReference
        var health: String
        var state: String
        var revision: String
        var at: String
    }

    /// The commit answered: nothing more may be sent.
    private(set) var committed = false
    /// How long the server waited for the deployment locks this transaction took (nil: it took
    /// none), for batches to know how contended the locks are (`LockWaits`).
    private(set) var lockWait: Duration?

    /// A locked deployment's stored state: its hubs' tracker state and its routing, as JSON text,
    /// and, when read with the lock, the API's maintenance windows that may be in effect from
    /// `from` on.
    private struct LockedDeploymentRows {
        var routing: String?
        var hubs: [String: String] = [:]
        var maintenance: (from: Date, windows: [MaintenanceWindow])?
    }

    /// A unit's savepoint: what the transaction held when it began, and whether the server has it.
    private struct Savepoint {
        var name: String
        var writes: Int
        var events: Int
        var locks: Set<String>
        var heldChainHead: Bool
        var sent: Bool
    }

    let timeout: TimeAmount

    init(
        connection: PostgresConnection, statements: PreparedStatements, logger: Logger, chain: EventChain,
        readOnly: Bool, timeout: TimeAmount, deferringWrites: Bool = false
    ) {
        self.connection = connection
        self.statements = statements
        self.logger = logger
        self.chain = chain
        self.readOnly = readOnly
        self.timeout = timeout
        self.deferringWrites = deferringWrites && !readOnly
    }

    /// Waits for `future`; past the timeout the connection is closed, which fails the statement
    /// (storage trouble) instead of leaving the unit of work hanging on a server that went silent.
    private func wait<T: Sendable>(_ future: EventLoopFuture<T>) throws -> T {
        let connection = connection
        let timer = future.eventLoop.scheduleTask(in: timeout) { connection.closeQuietly() }
        defer { timer.cancel() }
        return try future.wait()
    }

    /// Whether a statement sent now runs inside a savepoint on the server, which can undo it.
    private var insideSentSavepoint: Bool { savepoints.last?.sent ?? false }

    /// Sends a statement whose answer nothing needs now, without waiting: the connection sends
    /// the next one as soon as the server answered, with no round trip through this thread.
    /// Its failure is reported by `drain()`, at the latest when its unit of work ends.
    private func sendLater(_ query: PostgresQuery) {
        sendLater(.once(query))
    }

    private func sendLater(_ statement: PostgresStatement) {
        sendHubSaves()
        start(statement)
    }

    /// Puts `statement` on the connection, behind what is in flight. A prepared one not prepared on
    /// this connection yet is prepared first, which waits for the server once.
    private func start(_ statement: PostgresStatement) {
        let undoable = insideSentSavepoint
        switch statement {
        case .once(let query):
            inFlight.append((connection.query(query, logger: logger).map(StatementAnswer.init), undoable, nil))
        case .prepared(let sql, let values):
            do {
                // A connection that holds as many as it may runs it as a statement run once.
                guard let prepared = try statements.prepared(sql, on: connection, wait: { try wait($0) }) else {
                    return start(.once(statement.unprepared))
                }
                let answer = prepared.execute(values).map { StatementAnswer(rows: $0, command: nil) }
                inFlight.append((answer, undoable, sql))
            } catch {
                inFlight.append((connection.eventLoop.makeFailedFuture(error), undoable, sql))
            }
        }
    }

    /// Sends the hub states saved and not sent yet, inside the savepoints they were saved in.
    private func sendHubSaves() {
        guard !hubSaves.isEmpty else { return }
        var statement = SQLStatement(prepared: true)
        statement.append(Self.upsertHubStates(takeHubSaves(), into: &statement))
        sendDeferred()
        start(statement.statement)
    }

    private func takeHubSaves() -> [HubSave] {
        defer { hubSaves = [] }
        return hubSaves
    }

    /// Waits for every statement sent without waiting; rethrows the first failure.
    private func drain() throws {
        guard !inFlight.isEmpty else { return }
        let statements = inFlight
        inFlight = []
        var failure: (any Error)?
        for (answer, undoable, prepared) in statements {
            do {
                _ = try wait(answer)
            } catch {
                if let prepared, PostgresErrors.invalidatesPreparedStatement(error) { self.statements.forget(prepared) }
                if failure == nil {
                    failure = error
                    if PostgresErrors.sqlState(error) != nil, !undoable { poisoned = true }
                }
            }
        }
        if let failure { throw failure }
    }

    /// Runs a statement as it is, whatever is deferred, once those sent before it answered.
    private func send(_ query: PostgresQuery) throws -> PostgresQueryResult {
        sendHubSaves()
        try drain()
        do {
            return try wait(connection.query(query, logger: logger))
        } catch {
            if PostgresErrors.sqlState(error) != nil, !insideSentSavepoint { poisoned = true }
            throw error
        }
    }

    /// The rows of the last of `statements`, sent after what is in flight without waiting for
    /// it: the connection sends each as soon as the server answered the one before (no round trip
    /// through this thread).
    private func rowsAfterInFlight(_ statements: [PostgresStatement]) throws -> [PGRow] {
        for statement in statements { sendLater(statement) }
        let answer = inFlight.last!.answer
        try drain()
        return try wait(answer).rows.map(PGRow.init)
    }

    func rows(_ query: PostgresQuery) throws -> [PGRow] {
        sendDeferred()
        return try send(query).rows.map(PGRow.init)
    }

    @discardableResult
    func execute(_ query: PostgresQuery) throws -> Int {
        sendDeferred()
        return try send(query).metadata.rows ?? 0
    }

    /// A write whose row count nothing reads, sent without waiting (see `sendLater`).
    private func executeLater(_ query: PostgresQuery) {
        sendDeferred()
        sendLater(query)
    }

    /// A read that nothing deferred can change (the deployment locks, tracker and routing state,
    /// alert heads, which `deferred` completes): it runs without sending the deferred writes.
    private func lookup(_ query: PostgresQuery) throws -> [PGRow] {
        try send(query).rows.map(PGRow.init)
    }

    func begin() throws {
        // The first statement's answer says whether the transaction began.
        sendLater(readOnly ? "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" : "BEGIN")
    }

    /// Sends (without waiting) the deferred writes and the savepoints they belong in, so that the
    /// next statement runs where it would have without deferring.
    func sendDeferred() {
        sendSavepoints()
        sendWrites(upTo: deferred.count)
    }

    /// Sends the savepoints the server does not have yet, each after the writes made before it.
    private func sendSavepoints() {
        for index in savepoints.indices where !savepoints[index].sent {
            sendWrites(upTo: savepoints[index].writes)
            sendLater(PostgresQuery(unsafeSQL: "SAVEPOINT \(savepoints[index].name)"))
            savepoints[index].sent = true
        }
    }

    private func sendWrites(upTo end: Int) {
        guard sentWrites < end else { return }
        for statement in deferred.statements(sentWrites..<end) { sendLater(statement) }
        sentWrites = end
    }

    /// Writes what is deferred and the chained events last, then commits; with the chain head
    /// read already, all of it goes in one round trip.
    func commit() throws {
        if !readOnly {
            sendDeferred()
            try flushEvents()
        }
        sendLater("COMMIT")
        let answer = inFlight.last!.answer
        try drain()
        // A transaction that failed answers COMMIT with ROLLBACK; drain() reported why already.
        let tag = try wait(answer).command ?? "?"
        guard tag == "COMMIT" else { throw StoreError.unavailable("the transaction ended with \(tag), not COMMIT") }
        committed = true
    }

    func rollback() {
        hubSaves = []
        _ = try? drain()
        _ = try? send("ROLLBACK")
    }

    /// Takes the deployment's lock once per transaction (a read-only snapshot takes none) and
    /// reads its state with it (see `lockDeployments`).
    private func lockDeployment(_ deploymentId: String) throws {
        try lockDeployments([deploymentId], maintenanceFrom: nil, chainHead: false, afterDeferredWrites: false)
    }

    /// Before deciding on a batch's deployments: the deferred writes first (the server stores
    /// them before waiting for any lock; the inserts go in the locks' own statement), then every
    /// lock in the given (sorted) order, then, in a shared transaction, the chain head's row lock,
    /// which every such transaction takes last. All in one round trip.
    func prepareToDecide(deploymentIds: [String], from: Date) throws {
        guard !readOnly else { return }
        try lockDeployments(deploymentIds, maintenanceFrom: from, chainHead: deferringWrites, afterDeferredWrites: true)
    }

    /// Takes the locks of `deploymentIds` not taken yet, in order, then reads each one's hubs'
    /// tracker state, its routing state and (from `maintenanceFrom` on) its maintenance windows,
    /// then, if asked, the chain head under its row lock: one statement, a function of the schema
    /// (`standby_lock_deployments`, migrations 0003 and 0004) whose read follows the locks, so it
    /// reads what was committed before they were granted. The locks make these current until the
    /// commit; this transaction's own saves keep them so. `afterDeferredWrites`: the deferred
    /// writes are sent first, their inserts as parts of the same statement when they may be
    /// (`DeferredIngestWrites`). (The connection runs one statement per round trip, and the locks
    /// are held meanwhile; the statement is prepared, and the function's plans are kept by the
    /// server's session.)
    private func lockDeployments(
        _ deploymentIds: [String], maintenanceFrom: Date?, chainHead readHead: Bool, afterDeferredWrites: Bool
    ) throws {
        guard !readOnly else { return }
        let newIds = deploymentIds.filter { !lockedDeployments.contains($0) }
        let readHead = readHead && chainHead == nil
        if afterDeferredWrites { sendSavepoints() }
        let unsent = afterDeferredWrites ? sentWrites..<deferred.count : sentWrites..<sentWrites
        guard !newIds.isEmpty || readHead else { return sendWrites(upTo: unsent.upperBound) }
        guard !newIds.isEmpty else {
            sendWrites(upTo: unsent.upperBound)
            chainHead = try Self.chainHead(try rowsAfterInFlight([.once(Self.chainHeadQuery)]).first)
            return
        }
        let statements = deferred.statements(unsent) { statement, rowsWritten in
            // Every column TEXT: a prepared statement's rows are read as text (`SQLStatement`).
            """
            SELECT waited::TEXT AS waited, seq::TEXT AS seq, hash, part, deployment_id, hub_id, state, id, hubs,
                starts_at, ends_at, ended_at, reason, created_by, created_at
            FROM standby_lock_deployments(\(statement.bind(newIds)), \(statement.bind(maintenanceFrom.map(Timestamp.format))),
                \(statement.bind(readHead)), \(rowsWritten))
            """
        }
        sentWrites = unsent.upperBound
        let answer = try rowsAfterInFlight(statements)
        if let waited: Double = try answer.first?.number("waited") {
            lockWait = (lockWait ?? .zero) + .nanoseconds(Int64(waited * 1e9))
        }
        if readHead { chainHead = try Self.chainHead(answer.first) }
        var rows = Dictionary(uniqueKeysWithValues: newIds.map { ($0, LockedDeploymentRows()) })
        if let from = maintenanceFrom {
            for id in newIds { rows[id]?.maintenance = (from, []) }
        }
        for row in answer {
            // The row of the locks alone (nothing else found) has no part.
            guard let part = try row["part"] as String? else { continue }
            let id: String = try row["deployment_id"]
            switch part {
            case "hub": rows[id]?.hubs[try row["hub_id"]] = try row["state"] as String
            case "routing": rows[id]?.routing = try row["state"]
            default: rows[id]?.maintenance?.windows.append(try Self.maintenanceWindow(row))
            }
        }
        for (id, locked) in rows {
            lockedRows[id] = locked
            lockedDeployments.insert(id)
        }
    }

    /// The chain head under its row lock, `seq` as text like the locks' statement has it.
    private static let chainHeadQuery: PostgresQuery =
        "SELECT seq::TEXT AS seq, hash FROM chain_head WHERE id = 1 FOR UPDATE"

    private static func chainHead(_ row: PGRow?) throws -> (seq: Int64, hash: String) {
        guard let row else {
            throw StoreError.unavailable("the chain_head row is missing: the schema is not migrated")
        }
        return (try row.number("seq"), try row["hash"])
    }

    /// The API's maintenance windows of a locked deployment in effect at `at`, when they were
    /// read with its lock (nil: read them from the table).
    func lockedMaintenanceWindows(deploymentId: String, at: Date) -> [MaintenanceWindow]? {
        guard let cached = lockedRows[deploymentId]?.maintenance, at >= cached.from else { return nil }
        // The instant as the table's text has it, so that the answer is the statement's.
        let instant = Timestamp.parse(Timestamp.format(at)) ?? at
        return cached.windows.filter { $0.isActive(at: instant) }
    }

    /// A maintenance window was written: what was read with the locks is no longer the table.
    func forgetLockedMaintenanceWindows() {
        for id in lockedRows.keys { lockedRows[id]?.maintenance = nil }
    }

    // MARK: Reads

    /// Read from the table, never from a cache of this process: another instance may have
    /// changed it since. The deployment's lock makes the read current (see `lockDeployment`).
    func hubState(_ hub: HubReference) throws -> HubHealthState {
        try lockDeployment(hub.deploymentId)
        let text: String?
        if let rows = lockedRows[hub.deploymentId] {
            text = rows.hubs[hub.hubId]
        } else {
            text = try lookup(
                "SELECT state FROM hub_health WHERE deployment_id = \(hub.deploymentId) AND hub_id = \(hub.hubId)"
            ).first?["state"]
        }
        guard let text else { return HubHealthState(deploymentId: hub.deploymentId, hubId: hub.hubId) }
        return try HubHealthState(json: JSONValue.decode(Data(text.utf8)))
    }

    func deploymentState(_ deploymentId: String) throws -> DeploymentState? {
        try lockDeployment(deploymentId)
        let text: String?
        if let rows = lockedRows[deploymentId] {
            text = rows.routing
        } else {
            text = try lookup("SELECT state FROM deployment_state WHERE deployment_id = \(deploymentId)").first?[
                "state"]
        }
        guard let text else { return nil }
        return try JSONDecoder().decode(DeploymentState.self, from: Data(text.utf8))
    }

    func command(id: String) throws -> CommandView? {
        try rows("SELECT * FROM commands WHERE id = \(id)").first.map(Self.commandView)
    }

    func commandStatuses(failoverEventId: String) throws -> [CommandStatus] {
        try rows("SELECT status FROM commands WHERE failover_event_id = \(failoverEventId)").compactMap {
            CommandStatus(rawValue: try $0["status"])
        }
    }

    func commands(status: CommandStatus?, deploymentId: String?, page: PageRequest) throws -> Page<CommandView> {
        var filter = SQLStatement()
        filter.filter("status = ?", status?.rawValue)
        filter.filter("deployment_id = ?", deploymentId)
        return try page.fetch(self, from: "commands", filter: filter, ascending: true) {
            try Self.commandView($0)
        }
    }

    func deliverableCommands(deploymentIds: [String], now: Date, limit: Int) throws -> [CommandView] {
        try rows(
            """
            SELECT c.* FROM commands c
            WHERE c.status = 'pending' AND c.deployment_id = ANY(\(deploymentIds))
              AND c.next_attempt_at <= \(Timestamp.format(now))
              AND NOT EXISTS (
                  SELECT 1 FROM commands earlier
                  WHERE earlier.failover_event_id = c.failover_event_id AND earlier.position < c.position
                    AND earlier.status NOT IN ('delivered', 'succeeded'))
            ORDER BY c.seq LIMIT \(limit)
            """
        ).map(Self.commandView)
    }

    func failoverEvent(id: String) throws -> FailoverEventView? {
        try rows("SELECT * FROM failover_events WHERE id = \(id)").first.map(failoverEventView)
    }

    func latestFailoverEvent(deploymentId: String) throws -> FailoverEventView? {
        try rows("SELECT * FROM failover_events WHERE deployment_id = \(deploymentId) ORDER BY seq DESC LIMIT 1")
            .first.map(failoverEventView)
    }

    func failoverEvents(deploymentId: String?, page: PageRequest) throws -> Page<FailoverEventView> {
        var filter = SQLStatement()
        filter.filter("deployment_id = ?", deploymentId)
        return try page.fetch(self, from: "failover_events", filter: filter, ascending: false) {
            try failoverEventView($0)
        }
    }

    func failureWindows(hubId: String?, open: Bool?, page: PageRequest) throws -> Page<FailureWindowView> {
        var filter = SQLStatement()
        filter.filter("hub_id = ?", hubId)
        if let open { filter.filter(open ? "closed_at IS NULL" : "closed_at IS NOT NULL") }
        return try page.fetch(self, from: "failure_windows", filter: filter, ascending: false) {
            row in
            let closedAt: String? = try row["closed_at"]
            return FailureWindowView(
                id: try row["id"], deploymentId: try row["deployment_id"], hubId: try row["hub_id"],
                open: closedAt == nil, openedAt: try row["opened_at"], firstFailureAt: try row["first_failure_at"],
                lastFailureAt: try row["last_failure_at"], failureCount: try row["failure_count"],
                sources: JSONColumns.strings(try row["sources"]), evidence: JSONColumns.strings(try row["evidence"]),
                declaredDownAt: try row["declared_down_at"], closedAt: closedAt)
        }
    }

    func tallies() throws -> StoredTallies {
        var tallies = StoredTallies()
        tallies.openWindows = try rows(
            "SELECT deployment_id, hub_id, count(*) AS n FROM failure_windows WHERE closed_at IS NULL GROUP BY 1, 2"
        ).map {
            StoredTallies.OpenWindows(
                deploymentId: try $0["deployment_id"], hubId: try $0["hub_id"], count: try $0["n"])
        }
        tallies.failovers = try rows(
            "SELECT deployment_id, trigger, kind, count(*) AS n FROM failover_events GROUP BY 1, 2, 3"
        ).map {
            StoredTallies.Failovers(
                deploymentId: try $0["deployment_id"], trigger: try $0["trigger"], kind: try $0["kind"],
                count: try $0["n"])
        }
        tallies.commandsByStatus = try counts("SELECT status, count(*) AS n FROM commands GROUP BY 1")
        tallies.resubmissionsByStatus = try counts("SELECT status, count(*) AS n FROM resubmissions GROUP BY 1")
        return tallies
    }

    private func counts(_ query: PostgresQuery) throws -> [String: Int] {
        Dictionary(uniqueKeysWithValues: try rows(query).map { (try $0["status"] as String, try $0["n"] as Int) })
    }

    func job(id: String) throws -> StoredJob? {
        try rows("SELECT * FROM training_jobs WHERE id = \(id)").first.map(Self.job)
    }

    func job(externalId: String) throws -> StoredJob? {
        try rows("SELECT * FROM training_jobs WHERE external_id = \(externalId)").first.map(Self.job)
    }

    func jobView(id: String) throws -> JobView? {
        try job(id: id)?.view
    }

    func jobs(status: JobStatus?, hubId: String?, page: PageRequest) throws -> Page<JobView> {
        var filter = SQLStatement()
        filter.filter("status = ?", status?.rawValue)
        filter.filter("hub_id = ?", hubId)
        return try page.fetch(self, from: "training_jobs", filter: filter, ascending: false) {
            try Self.job($0).view
        }
    }

    func resubmission(id: String) throws -> StoredResubmission? {
        try rows("SELECT * FROM resubmissions WHERE id = \(id)").first.map(Self.resubmission)
    }

    func resubmissionView(id: String, withSpec: Bool) throws -> ResubmissionView? {
        guard
            let row = try rows(
                """
                SELECT r.*, j.external_id, j.spec FROM resubmissions r JOIN training_jobs j ON j.id = r.job_id
                WHERE r.id = \(id)
                """
            ).first
        else { return nil }
        return try Self.resubmissionView(row, spec: withSpec ? JSONValue.parse(try row["spec"] as String) : nil)
    }

    func resubmissions(status: ResubmissionStatus?, page: PageRequest) throws -> Page<ResubmissionView> {
        var filter = SQLStatement()
        filter.filter("r.status = ?", status?.rawValue)
        return try page.fetch(
            self, select: "r.*, j.external_id",
            from: "resubmissions r JOIN training_jobs j ON j.id = r.job_id", filter: filter, ascending: true,
            seqColumn: "r.seq"
        ) { try Self.resubmissionView($0, spec: nil) }
    }

    func expiredLeaseCount(now: Date) throws -> Int {
        try rows(
            "SELECT count(*) AS n FROM resubmissions WHERE status = 'leased' AND lease_expires_at <= \(Timestamp.format(now))"
        ).first?["n"] ?? 0
    }

    // MARK: Writes

    func storeReport(_ report: HealthReportInput, receivedAt: Date, actor: String) throws -> String {
        try rows(
            """
            INSERT INTO health_reports
                (id, deployment_id, hub_id, source, outcome, observed_at, received_at, latency_ms, status_code,
                 detail, actor)
            VALUES (\(report.id), \(report.deploymentId), \(report.hubId), \(report.source),
                    \(report.outcome.rawValue), \(Timestamp.format(report.observedAt)), \(Timestamp.format(receivedAt)),
                    \(report.latencyMs), \(report.statusCode), \(report.detail), \(actor))
            ON CONFLICT (hub_id, source, observed_at)
                DO UPDATE SET duplicate_count = health_reports.duplicate_count + 1
            RETURNING id
            """
        ).first?["id"] ?? report.id
    }

    func storeDelivery(_ delivery: IncomingDelivery, content: DeliveryContent, ids: any IDSource) throws
        -> IngestResult
    {
        try record(delivery, content: content, ids: ids)
    }

    func saveHubState(_ state: HubHealthState, for hub: HubReference, at: Date) throws {
        let text = state.jsonValue().compactString()
        lockedRows[hub.deploymentId]?.hubs[hub.hubId] = text
        hubSaves.append(
            HubSave(
                hub: hub, health: state.health.rawValue, state: text,
                revision: String(UInt64.random(in: 1...UInt64.max), radix: 36), at: Timestamp.format(at)))
        // Alone, a statement's failure must be its unit's: sent now.
        if !deferringWrites { sendHubSaves() }
    }

    /// Writes hub states in one statement, the last saved of each hub (a statement may change a
    /// row once); returns its text, its values bound in `statement`.
    private static func upsertHubStates(_ saves: [HubSave], into statement: inout SQLStatement) -> String {
        var latest: [HubReference: HubSave] = [:]
        for save in saves { latest[save.hub] = save }
        let rows = latest.values.sorted { $0.hub < $1.hub }
        func column(_ value: (HubSave) -> String) -> String { statement.bind(TextColumn(rows.map(value))) }
        let row = unnestedRows([
            "deployment_id": column(\.hub.deploymentId), "hub_id": column(\.hub.hubId), "health": column(\.health),
            "state": column(\.state), "revision": column(\.revision), "updated_at": column(\.at),
        ])
        return """
            INSERT INTO hub_health (deployment_id, hub_id, health, state, revision, updated_at)
            \(row)
            ON CONFLICT (deployment_id, hub_id) DO UPDATE SET health = excluded.health, state = excluded.state,
                revision = excluded.revision, updated_at = excluded.updated_at
            """
    }

    func saveDeploymentState(_ state: DeploymentState, deploymentId: String, at: Date) throws {
        let text = String(decoding: try JSONEncoder().encode(state), as: UTF8.self)
        lockedRows[deploymentId]?.routing = text
        executeLater(
            """
            INSERT INTO deployment_state (deployment_id, state, updated_at)
            VALUES (\(deploymentId), \(text), \(Timestamp.format(at)))
            ON CONFLICT (deployment_id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at
            """)
    }

    func saveFailureWindow(_ window: FailureWindow, at: Date) throws {
        executeLater(
            """
            INSERT INTO failure_windows
                (id, deployment_id, hub_id, opened_at, first_failure_at, last_failure_at, failure_count, sources,
                 evidence, declared_down_at, closed_at, updated_at)
            VALUES (\(window.id), \(window.deploymentId), \(window.hubId), \(Timestamp.format(window.openedAt)),
                    \(Timestamp.format(window.firstFailureAt)), \(Timestamp.format(window.lastFailureAt)),
                    \(window.failureCount), \(JSONValue.strings(window.sources).canonicalString()),
                    \(JSONValue.strings(window.evidence).canonicalString()),
                    \(window.declaredDownAt.map(Timestamp.format)), \(window.closedAt.map(Timestamp.format)),
                    \(Timestamp.format(at)))
            ON CONFLICT (id) DO UPDATE SET first_failure_at = excluded.first_failure_at,
                last_failure_at = excluded.last_failure_at, failure_count = excluded.failure_count,
                sources = excluded.sources, evidence = excluded.evidence,
                declared_down_at = excluded.declared_down_at, closed_at = excluded.closed_at,
                updated_at = excluded.updated_at
            """)
    }

    func insertFailoverEvent(_ plan: FailoverPlan, status: FailoverEventStatus, at date: Date) throws {
        let at = Timestamp.format(date)
        let settledAt: String? = status == .open ? nil : at
        executeLater(
            """
            INSERT INTO failover_events
                (id, deployment_id, kind, trigger, from_hub, to_hub, reason, rule, evidence, actor, dry_run, status,
                 created_at, settled_at)
            VALUES (\(plan.id), \(plan.deploymentId), \(plan.kind.rawValue), \(plan.trigger.rawValue), \(plan.fromHub),
                    \(plan.toHub), \(plan.reason), \(plan.rule), \(JSONValue.strings(plan.evidence).canonicalString()),
                    \(plan.actor), \(plan.dryRun), \(status.rawValue), \(at), \(settledAt))
            """)
        let initial = CommandStatus.initial(dryRun: plan.dryRun).rawValue
        let nextAttemptAt: String? = plan.dryRun ? nil : at
        for (position, command) in plan.commands.enumerated() {
            let parameters = JSONValue.object(command.parameters.mapValues(JSONValue.string)).canonicalString()
            executeLater(
                """
                INSERT INTO commands
                    (id, deployment_id, failover_event_id, position, kind, hub, from_hub, to_hub, parameters,
                     status, created_at, updated_at, next_attempt_at)
                VALUES (\(command.id), \(plan.deploymentId), \(plan.id), \(position), \(command.kind.rawValue),
                        \(command.hub), \(command.fromHub), \(command.toHub), \(parameters), \(initial), \(at), \(at),
                        \(nextAttemptAt))
                """)
        }
    }

    func settleFailoverEvent(id: String, status: FailoverEventStatus, at: Date) throws {
        executeLater(
            """
            UPDATE failover_events SET status = \(status.rawValue), settled_at = \(Timestamp.format(at))
            WHERE id = \(id) AND status = 'open'
            """)
    }

    func supersedeFailoverEvent(id: String, at: Date) throws {
        try settleFailoverEvent(id: id, status: .superseded, at: at)
        executeLater(
            """
            UPDATE commands SET status = 'superseded', updated_at = \(Timestamp.format(at))
            WHERE failover_event_id = \(id) AND status IN ('pending', 'delivered')
            """)
    }

    func recordAcknowledgement(
        commandId: String, outcome: CommandAckOutcome, detail: String?, actor: String, at date: Date
    ) throws {
        let at = Timestamp.format(date)
        try execute(
            """
            UPDATE commands SET status = \(outcome.rawValue), ack_outcome = \(outcome.rawValue),
                ack_detail = \(detail), ack_actor = \(actor), acked_at = \(at), updated_at = \(at)
            WHERE id = \(commandId)
            """)
    }

    func countDuplicateAcknowledgement(commandId: String) throws {
        try execute("UPDATE commands SET ack_duplicates = ack_duplicates + 1 WHERE id = \(commandId)")
    }

    func recordPushDelivered(commandId: String, at: Date) throws {
        try execute(
            """
            UPDATE commands SET delivery_attempts = delivery_attempts + 1, last_error = NULL,
                status = CASE status WHEN 'pending' THEN 'delivered' ELSE status END,
                updated_at = \(Timestamp.format(at))
            WHERE id = \(commandId)
            """)
    }

    func recordPushFailure(commandId: String, error: String, nextAttemptAt: Date?, at: Date) throws {
        try execute(
            """
            UPDATE commands SET delivery_attempts = delivery_attempts + 1, last_error = \(error),
                next_attempt_at = \(nextAttemptAt.map(Timestamp.format)), updated_at = \(Timestamp.format(at))
            WHERE id = \(commandId) AND status = 'pending'
            """)
    }

    func insertJob(_ job: StoredJob) throws {
        try execute(
            """
            INSERT INTO training_jobs
                (id, external_id, deployment_id, hub_id, spec, spec_sha256, status, priority, submitted_at,
                 interrupted_by, resubmitted_from, registered_by, created_at, updated_at)
            VALUES (\(job.id), \(job.externalId), \(job.deploymentId), \(job.hubId), \(job.spec), \(job.specSHA256),
                    \(job.status.rawValue), \(job.priority), \(job.submittedAt), \(job.interruptedBy),
                    \(job.resubmittedFrom), \(job.registeredBy), \(job.createdAt), \(job.updatedAt))
            """)
    }

    func saveJob(_ job: StoredJob) throws {
        try execute(
            """
            UPDATE training_jobs SET status = \(job.status.rawValue), interrupted_by = \(job.interruptedBy),
                resubmitted_from = \(job.resubmittedFrom), updated_at = \(job.updatedAt)
            WHERE id = \(job.id)
            """)
    }

    func runningJobs(hubId: String) throws -> [StoredJob] {
        try rows("SELECT * FROM training_jobs WHERE hub_id = \(hubId) AND status = 'running' ORDER BY seq FOR UPDATE")
            .map(Self.job)
    }

    func insertResubmission(_ item: StoredResubmission) throws -> Bool {
        try execute(
            """
            INSERT INTO resubmissions
                (id, job_id, failover_event_id, deployment_id, from_hub, target_hub, priority, status, attempts,
                 max_attempts, available_at, lease_owner, lease_expires_at, last_error, new_job_id, created_at,
                 updated_at)
            VALUES (\(item.id), \(item.jobId), \(item.failoverEventId), \(item.deploymentId), \(item.fromHub),
                    \(item.targetHub), \(item.priority), \(item.status.rawValue), \(item.attempts), \(item.maxAttempts),
                    \(item.availableAt), \(item.leaseOwner), \(item.leaseExpiresAt), \(item.lastError),
                    \(item.newJobId), \(item.createdAt), \(item.updatedAt))
            ON CONFLICT DO NOTHING
            """) > 0
    }

    func saveResubmission(_ item: StoredResubmission) throws {
        try execute(
            """
            UPDATE resubmissions SET target_hub = \(item.targetHub), status = \(item.status.rawValue),
                attempts = \(item.attempts), available_at = \(item.availableAt), lease_owner = \(item.leaseOwner),
                lease_expires_at = \(item.leaseExpiresAt), last_error = \(item.lastError),
                new_job_id = \(item.newJobId), updated_at = \(item.updatedAt)
            WHERE id = \(item.id)
            """)
    }

    /// Claims across instances: rows another transaction has locked are skipped, never waited
    /// for, so concurrent claims on different instances never get the same item.
    func availableResubmissions(now: Date, limit: Int) throws -> [StoredResubmission] {
        try rows(
            """
            SELECT * FROM resubmissions
            WHERE status = 'queued' AND available_at <= \(Timestamp.format(now)) AND target_hub IS NOT NULL
            ORDER BY priority DESC, seq ASC LIMIT \(limit)
            FOR UPDATE SKIP LOCKED
            """
        ).map(Self.resubmission)
    }

    func expiredLeases(now: Date) throws -> [StoredResubmission] {
        try rows(
            """
            SELECT * FROM resubmissions WHERE status = 'leased' AND lease_expires_at <= \(Timestamp.format(now))
            FOR UPDATE SKIP LOCKED
            """
        ).map(Self.resubmission)
    }

    func append(_ event: EventDraft) throws {
        pendingEvents.append(UnlinkedEvent(event))
    }

    func requireLease(holder: String, epoch: Int) throws {
        // FOR SHARE: the lease cannot change hands until this transaction ends, so nothing this
        // unit writes commits after another instance took over.
        let held = try rows(
            """
            SELECT 1 FROM leases
            WHERE name = 'leader' AND holder = \(holder) AND epoch = \(epoch) AND expires_at > now()
            FOR SHARE
            """)
        guard !held.isEmpty else {
            throw StoreError.fenced("instance \(holder) no longer holds the leader lease under epoch \(epoch)")
        }
    }

    func inSavepoint<T>(_ work: () throws -> T) throws -> T {
        // What was saved before belongs outside this savepoint.
        sendHubSaves()
        savepoints.append(
            Savepoint(
                name: "standby_unit_\(savepoints.count + 1)", writes: deferred.count, events: pendingEvents.count,
                locks: lockedDeployments, heldChainHead: chainHead != nil, sent: false))
        if !deferringWrites { sendDeferred() }
        do {
            let value = try work()
            // The unit's statements answered before it ends: a failure among them is its own.
            if savepoints[savepoints.count - 1].sent { try drain() }
            let savepoint = savepoints.removeLast()
            if savepoint.sent { sendLater(PostgresQuery(unsafeSQL: "RELEASE SAVEPOINT \(savepoint.name)")) }
            return value
        } catch {
            let savepoint = savepoints.removeLast()
            pendingEvents.removeSubrange(savepoint.events...)
            deferred.truncate(to: savepoint.writes)
            // Hub states not sent were all saved inside this savepoint: forgotten, and the locked
            // rows, which have them, read again.
            if !takeHubSaves().isEmpty { lockedRows = [:] }
            if savepoint.sent {
                _ = try? drain()
                // What the server ran inside the savepoint is undone, locks taken there included.
                sentWrites = min(sentWrites, savepoint.writes)
                lockedDeployments = savepoint.locks
                // So are the saves made inside it: the locked rows are read again, one by one.
                lockedRows = [:]
                if !savepoint.heldChainHead { chainHead = nil }
                // A broken connection fails these too; the commit then reports it.
                _ = try? send(PostgresQuery(unsafeSQL: "ROLLBACK TO SAVEPOINT \(savepoint.name)"))
                _ = try? send(PostgresQuery(unsafeSQL: "RELEASE SAVEPOINT \(savepoint.name)"))
            }
            throw error
        }
    }

    /// Chains and writes the events this transaction appended, under the chain head's row lock,
    /// as its last statements before the commit.
    func flushEvents() throws {
        guard !pendingEvents.isEmpty else { return }
        let head =
            try chainHead ?? Self.chainHead(rows(Self.chainHeadQuery).first)
        var seq = head.seq
        var prevHash = head.hash
        var events: [EventRecord] = []
        var dataTexts: [String] = []
        for unlinked in pendingEvents {
            seq += 1
            let (event, dataText) = chain.link(unlinked, seq: seq, prevHash: prevHash)
            prevHash = event.hash
            events.append(event)
            dataTexts.append(dataText)
        }
        // The hub states saved, the events and the new head in one statement (one round trip),
        // its text the same for any number of rows (one array per column, see `TextColumn`).
        sendDeferred()
        var statement = SQLStatement(prepared: true)
        // A data-modifying WITH part runs whether or not the statement reads it.
        let savedHubs =
            hubSaves.isEmpty ? "" : "saved_hubs AS (\(Self.upsertHubStates(takeHubSaves(), into: &statement))), "
        func column(_ value: (EventRecord) -> String?) -> String { statement.bind(TextColumn(events.map(value))) }
        let row = unnestedRows([
            "seq": statement.bind(events.map { Int($0.seq) }), "at": column(\.at), "type": column(\.type),
            "deployment_id": column(\.deploymentId), "hub": column(\.hub), "actor": column(\.actor),
            "data": statement.bind(TextColumn(dataTexts)), "prev_hash": column(\.prevHash), "hash": column(\.hash),
        ])
        let appended = """
            WITH \(savedHubs)appended AS (
                INSERT INTO events (seq, at, type, deployment_id, hub, actor, data, prev_hash, hash)
                \(row))
            UPDATE chain_head SET seq = \(statement.bind(Int(seq))), hash = \(statement.bind(prevHash)) WHERE id = 1
            """
        statement.append(appended)
        sendLater(statement.statement)
        chainHead = (seq, prevHash)
        pendingEvents = []
    }

    // MARK: Alert records

    func alertHead(key: String) throws -> StoredAlertHead? {
        let stored: StoredAlertHead?
        if let known = storedAlertHeads[key] {
            stored = known
        } else {
            stored = try lookup(
                "SELECT \(unescaped: Self.alertHeadColumns) FROM alerts WHERE alert_key = \(key) FOR UPDATE"
            ).first.map(Self.alertHead)
            storedAlertHeads[key] = .some(stored)
        }
        return deferred.head(key: key, stored: stored)
    }

    /// The heads of a batch's alerts in one round trip, before its units look them up one by one;
    /// a key with no row is remembered as absent too.
    ///
    /// A head is read under its row's lock (`FOR UPDATE`, in key order so that two batches never
    /// deadlock over their heads): another instance storing the same delivery at the same moment is
    /// waited for and its change read, so the second copy is counted as a duplicate instead of
    /// being applied again. An alert first seen by both at once has no row to lock; the unique
    /// key then fails one of them, which runs again and finds the other's.
    func readAhead(_ rows: ReadAhead) throws {
        // Heads read so must be what the server had before this transaction wrote (`alertHead`).
        guard deferred.count == 0, sentWrites == 0 else { return }
        let keys = Array(Set(rows.alertKeys.filter { storedAlertHeads[$0] == nil }))
        guard !keys.isEmpty else { return }
        for key in keys { storedAlertHeads[key] = .some(nil) }
        for row in try lookup(
            """
            SELECT alert_key, \(unescaped: Self.alertHeadColumns) FROM alerts WHERE alert_key = ANY(\(keys))
            ORDER BY alert_key FOR UPDATE
            """)
        {
            storedAlertHeads[try row["alert_key"] as String] = .some(try Self.alertHead(row))
        }
    }

    private static let alertHeadColumns = "id, condition, state_fingerprint, observed_at, fired_at, duplicate_count"

    private static func alertHead(_ row: PGRow) throws -> StoredAlertHead {
        StoredAlertHead(
            id: try row["id"], condition: (try row["condition"] as String?).flatMap(AlertCondition.init(rawValue:)),
            stateFingerprint: try row["state_fingerprint"], observedAt: try row["observed_at"],
            firedAt: try row["fired_at"], duplicateCount: try row["duplicate_count"])
    }

    /// Logs an ingest write; sent at once unless this transaction defers them.
    private func write(_ write: DeferredIngestWrites.Write) {
        deferred.append(write)
        if !deferringWrites { sendDeferred() }
    }

    func insertAlert(
        id: String, key: String, alert: NormalizedAlert, columns: AlertColumns, deliveryId: String, at: String
    ) throws {
        write(
            .insertAlert(
                DeferredIngestWrites.AlertRow(
                    id: id, key: key, status: AlertStatus.recognized.rawValue, azureAlertId: alert.azureAlertId,
                    rule: alert.rule, severity: columns.severity, signalType: alert.signalType,
                    monitoringService: alert.monitoringService, schema: alert.schema.rawValue,
                    kind: alert.kind.rawValue, condition: columns.condition, targetIds: columns.targetIds,
                    hubs: columns.hubs, firedAt: columns.firedAt, resolvedAt: alert.resolvedAt.map(Timestamp.format),
                    observedAt: columns.observedAt, description: columns.description, isTest: alert.isTest,
                    details: columns.details, stateFingerprint: columns.stateFingerprint, deliveryId: deliveryId,
                    at: at)))
    }

    func insertOpaqueAlert(
        id: String, key: String, status: AlertStatus, details: String, deliveryId: String, at: String
    ) throws {
        write(
            .insertAlert(
                DeferredIngestWrites.AlertRow(
                    id: id, key: key, status: status.rawValue, details: details, deliveryId: deliveryId, at: at)))
    }

    func countDuplicateDelivery(alertId: String, deliveryId: String) throws {
        write(.countDuplicate(alertId: alertId, deliveryId: deliveryId))
    }

    func updateAlert(id: String, columns: AlertColumns, deliveryId: String, at: String) throws {
        write(.updateAlert(id: id, columns: columns, deliveryId: deliveryId, at: at))
    }

    func replaceAlertHubs(alertId: String, hubs: [HubReference], replacing: Bool) throws {
        write(.alertHubs(alertId: alertId, hubs: hubs, replacing: replacing))
    }

    func insertDelivery(
        _ delivery: IncomingDelivery, outcome: DeliveryOutcome, schema: String?, alertId: String, detail: String?
    ) throws {
        write(
            .insertDelivery(
                DeferredIngestWrites.DeliveryRow(
                    id: delivery.id, receivedAt: Timestamp.format(delivery.receivedAt),
                    remoteAddress: delivery.remoteAddress, contentType: delivery.contentType, body: delivery.body,
                    sha256: delivery.sha256, outcome: outcome.rawValue, schema: schema, alertId: alertId,
                    detail: detail)))
    }

    // MARK: Rows

    static func commandView(_ row: PGRow) throws -> CommandView {
        let parameters =
            JSONValue.parse(try row["parameters"] as String)?.objectValue?.compactMapValues(\.stringValue) ?? [:]
        return CommandView(
            id: try row["id"], deploymentId: try row["deployment_id"], failoverEventId: try row["failover_event_id"],
            position: try row["position"], kind: try row["kind"], hub: try row["hub"], fromHub: try row["from_hub"],
            toHub: try row["to_hub"], parameters: parameters,
            status: CommandStatus(rawValue: try row["status"]) ?? .pending, createdAt: try row["created_at"],
            updatedAt: try row["updated_at"], ackOutcome: try row["ack_outcome"], ackDetail: try row["ack_detail"],
            ackActor: try row["ack_actor"], ackedAt: try row["acked_at"],
            deliveryAttempts: try row["delivery_attempts"], lastError: try row["last_error"])
    }

    private func failoverEventView(_ row: PGRow) throws -> FailoverEventView {
        let id: String = try row["id"]
        return FailoverEventView(
            id: id, deploymentId: try row["deployment_id"], kind: try row["kind"], trigger: try row["trigger"],
            fromHub: try row["from_hub"], toHub: try row["to_hub"], reason: try row["reason"], rule: try row["rule"],
            evidence: JSONColumns.strings(try row["evidence"]), actor: try row["actor"], dryRun: try row["dry_run"],
            status: FailoverEventStatus(rawValue: try row["status"]) ?? .open, createdAt: try row["created_at"],
            settledAt: try row["settled_at"],
            commands: try rows("SELECT * FROM commands WHERE failover_event_id = \(id) ORDER BY position").map(
                Self.commandView))
    }

    static func job(_ row: PGRow) throws -> StoredJob {
        StoredJob(
            id: try row["id"], externalId: try row["external_id"], deploymentId: try row["deployment_id"],
            hubId: try row["hub_id"], spec: try row["spec"], specSHA256: try row["spec_sha256"],
            status: JobStatus(rawValue: try row["status"]) ?? .running, priority: try row["priority"],
            submittedAt: try row["submitted_at"], interruptedBy: try row["interrupted_by"],
            resubmittedFrom: try row["resubmitted_from"], registeredBy: try row["registered_by"],
            createdAt: try row["created_at"], updatedAt: try row["updated_at"])
    }

    static func resubmission(_ row: PGRow) throws -> StoredResubmission {
        StoredResubmission(
            id: try row["id"], jobId: try row["job_id"], failoverEventId: try row["failover_event_id"],
            deploymentId: try row["deployment_id"], fromHub: try row["from_hub"], targetHub: try row["target_hub"],
            priority: try row["priority"], status: ResubmissionStatus(rawValue: try row["status"]) ?? .queued,
            attempts: try row["attempts"], maxAttempts: try row["max_attempts"],
            availableAt: try row["available_at"], leaseOwner: try row["lease_owner"],
            leaseExpiresAt: try row["lease_expires_at"], lastError: try row["last_error"],
            newJobId: try row["new_job_id"], createdAt: try row["created_at"], updatedAt: try row["updated_at"])
    }

    static func resubmissionView(_ row: PGRow, spec: JSONValue?) throws -> ResubmissionView {
        try resubmission(row).view(externalId: try row["external_id"], spec: spec)
    }
}
