import Foundation
import StandbyCore
import StandbyPrimitives

/// "What would this policy have done?": the recorded history fed, in order, through a control
/// plane with a candidate topology on a scratch store, and the decisions it makes compared with
/// those that were recorded.
///
/// What is replayed: reports (`report.accepted`), webhook deliveries (their stored bodies,
/// normalised again with the candidate's hubs and policy), operator actions, command
/// acknowledgements (matched to the replayed failover by position), maintenance windows declared
/// through the API and their early ends, drills and readiness changes, each at the time it was
/// recorded. (An operator's abort of a drill is not replayed: the drill runs its course.) Time passes
/// between them as the live ticker makes it pass: a tick every `tickStep` for `fineFor` after each
/// event (where deadlines such as staleness fall), then every `coarseStep`. A decision made at a
/// tick can therefore land up to a step from where the live one did: differences within
/// `tolerance` count as the same decision.
public struct ReplayReport: Sendable, Hashable, Encodable {
    public struct Decision: Sendable, Hashable, Encodable {
        public var kind: String
        public var fromHub: String?
        public var toHub: String?
        public var at: String
        public var reason: String
        public var trigger: String
    }

    public struct Difference: Sendable, Hashable, Encodable {
        /// `added` (the candidate decides it, the record does not have it), `removed` or `moved`.
        public var type: String
        public var kind: String
        public var fromHub: String?
        public var toHub: String?
        public var recordedAt: String?
        public var replayedAt: String?
        /// The deciding evidence: the replayed decision's reason, or the recorded one's when removed.
        public var reason: String
    }

    public struct Deployment: Sendable, Hashable, Encodable {
        public var id: String
        public var recorded: [Decision]
        public var replayed: [Decision]
        public var differences: [Difference]
    }

    public var deployments: [Deployment]
    /// Events read from the history, and how many of them were fed to the replay.
    public var eventsRead: Int
    public var signalsReplayed: Int
}

public struct ReplaySettings: Sendable {
    public var since: Date?
    public var until: Date?
    public var deploymentId: String?
    public var tickStep: TimeInterval = 1
    public var fineFor: TimeInterval = 30 * 60
    public var coarseStep: TimeInterval = 30
    public var tolerance: TimeInterval = 2
    public var batchSize = 2000
    public init() {}
}

public struct Replayer: Sendable {
    /// The recorded history, the commands it refers to and the stored deliveries.
    let history: any HistoryStore
    let recordedStore: any ControlStore
    let alerts: any AlertRepository
    /// The control plane to replay into: a scratch store with the candidate topology.
    let scratch: ControlPlane
    let scratchHistory: any HistoryStore
    let settings: ReplaySettings
    let progress: @Sendable (Int) -> Void

    public init(
        history: any HistoryStore, recordedStore: any ControlStore, alerts: any AlertRepository, scratch: ControlPlane,
        scratchHistory: any HistoryStore, settings: ReplaySettings,
        progress: @escaping @Sendable (Int) -> Void = { _ in }
    ) {
        self.history = history
        self.recordedStore = recordedStore
        self.alerts = alerts
        self.scratch = scratch
        self.scratchHistory = scratchHistory
        self.settings = settings
        self.progress = progress
    }

    public func run() async throws -> ReplayReport {
        var query = EventQuery()
        query.deployment = settings.deploymentId
        query.until = settings.until
        var after: Int64 = 0
        var clock: Date?
        var lastEventAt: Date?
        var read = 0
        var replayed = 0
        // Recorded failover event id → the replayed one decided with it (for acknowledgements).
        var eventMap: [String: String] = [:]
        // Recorded maintenance window id → the replayed one (for windows ended early).
        var windowMap: [String: String] = [:]
        var recorded: [String: [ReplayReport.Decision]] = [:]
        while true {
            let events = try await history.batch(query, afterSeq: after, batchSize: settings.batchSize)
            guard let last = events.last else { break }
            after = last.seq
            for event in events {
                try Task.checkCancellation()
                read += 1
                if read % 10_000 == 0 { progress(read) }
                guard let at = Timestamp.parse(event.at) else { continue }
                if let from = clock { try await passTime(from: from, to: at, lastEventAt: lastEventAt) }
                clock = max(clock ?? at, at)
                if try await feed(event, at: at, eventMap: &eventMap, windowMap: &windowMap, recorded: &recorded) {
                    replayed += 1
                    lastEventAt = at
                }
            }
        }
        if let from = clock, let until = settings.until, until > from {
            try await passTime(from: from, to: until, lastEventAt: lastEventAt)
        }
        let replayedDecisions = try await decisions(in: scratchHistory)
        let ids = scratch.topology.deployments.map(\.id).filter {
            settings.deploymentId == nil || $0 == settings.deploymentId
        }
        return ReplayReport(
            deployments: ids.map { id in
                let before = window(recorded[id] ?? [])
                let after = window(replayedDecisions[id] ?? [])
                return ReplayReport.Deployment(
                    id: id, recorded: before, replayed: after, differences: compare(before, after))
            }, eventsRead: read, signalsReplayed: replayed)
    }

    /// Ticks the scratch control plane from `from` to `to` (exclusive), finely after an event.
    private func passTime(from: Date, to: Date, lastEventAt: Date?) async throws {
        var now = from
        while true {
            let fine = lastEventAt.map { now.timeIntervalSince($0) < settings.fineFor } ?? true
            now = now.addingTimeInterval(fine ? settings.tickStep : settings.coarseStep)
            guard now < to else { break }
            try Task.checkCancellation()
            try await scratch.tick(now: now)
            try await scratch.expireOverdueCommands(now: now)
        }
    }

    /// Feeds one recorded event to the scratch plane; true when it was a signal or an action.
    private func feed(
        _ event: EventRecord, at: Date, eventMap: inout [String: String], windowMap: inout [String: String],
        recorded: inout [String: [ReplayReport.Decision]]
    ) async throws -> Bool {
        let data = event.data
        let topology = scratch.topology
        switch event.type {
        case "report.accepted":
            guard let deploymentId = event.deploymentId, let hubId = event.hub,
                topology.deployment(deploymentId)?.hub(hubId) != nil,
                let reportId = data["reportId"]?.stringValue, let source = data["source"]?.stringValue,
                let outcome = data["outcome"]?.stringValue.flatMap(ObservationOutcome.init(rawValue:)),
                let observedAt = data["observedAt"]?.dateValue
            else { return false }
            // The source as recorded already carries the reporter's prefix ("probe:...").
            let report = HealthReportInput(
                id: reportId, deploymentId: deploymentId, hubId: hubId, source: source, outcome: outcome,
                observedAt: observedAt, latencyMs: nil, statusCode: nil, detail: nil)
            _ = try await scratch.recordReports([report], actor: event.actor, now: at)
            return true
        case "delivery.received":
            guard let id = data["deliveryId"]?.stringValue, let stored = try await alerts.delivery(id: id) else {
                return false
            }
            let delivery = IncomingDelivery(
                id: stored.id, receivedAt: at, remoteAddress: stored.remoteAddress, contentType: stored.contentType,
                body: stored.body)
            _ = try await scratch.ingest(delivery, content: DeliveryContent.classify(stored.body, topology: topology))
            return true
        case let type where type.hasPrefix("operator."):
            guard let deploymentId = event.deploymentId, topology.deployment(deploymentId) != nil,
                let action = OperatorAction(rawValue: String(type.dropFirst("operator.".count)))
            else { return false }
            let request = OperatorRequest(
                action: action, reason: data["reason"]?.stringValue ?? "", actor: event.actor,
                force: data["force"]?.boolValue ?? false,
                allowUnhealthyTarget: data["allowUnhealthyTarget"]?.boolValue ?? false, hub: event.hub,
                until: data["until"]?.dateValue)
            // An action the candidate's state refuses is refused in the replay too.
            _ = try? await scratch.operatorAction(deploymentId: deploymentId, request: request, now: at)
            return true
        case "failover.decided":
            guard let deploymentId = event.deploymentId, let id = data["failoverEventId"]?.stringValue else {
                return false
            }
            let decision = Self.decision(event, at: at)
            recorded[deploymentId, default: []].append(decision)
            // The replayed event decided at the same moment with the same move, if any.
            if let match = try await scratch.failoverEvents(deployment: deploymentId, page: PageRequest(limit: 5)).items
                .first(where: {
                    $0.kind == decision.kind && $0.fromHub == decision.fromHub && $0.toHub == decision.toHub
                        && !eventMap.values.contains($0.id)
                })
            {
                eventMap[id] = match.id
            }
            return false
        case "command.acknowledged":
            guard let commandId = data["commandId"]?.stringValue, let eventId = data["failoverEventId"]?.stringValue,
                let replayedEvent = eventMap[eventId],
                let outcome = data["outcome"]?.stringValue.flatMap(CommandAckOutcome.init(rawValue:)),
                let position = try await recordedStore.read({ try $0.command(id: commandId)?.position }),
                let command = try await scratch.failoverEvent(id: replayedEvent)?.commands.first(where: {
                    $0.position == position
                })
            else { return false }
            _ = try? await scratch.acknowledge(
                commandId: command.id, outcome: outcome, detail: data["detail"]?.stringValue, actor: event.actor,
                now: at)
            return true
        case "maintenance.scheduled":
            guard let deploymentId = event.deploymentId, let startsAt = data["startsAt"]?.dateValue,
                let endsAt = data["endsAt"]?.dateValue
            else { return false }
            let hubs = data["hubs"]?.arrayValue?.compactMap(\.stringValue) ?? []
            let scheduled = try? await scratch.scheduleMaintenance(
                MaintenanceRequest(
                    deploymentId: deploymentId, hubs: hubs, startsAt: startsAt, endsAt: endsAt,
                    reason: data["reason"]?.stringValue ?? ""), actor: event.actor, now: at)
            if let recordedId = data["maintenanceWindowId"]?.stringValue, let scheduled {
                windowMap[recordedId] = scheduled.window.id
            }
            return true
        case "maintenance.ended_early":
            guard let recordedId = data["maintenanceWindowId"]?.stringValue, let id = windowMap[recordedId] else {
                return false
            }
            _ = try? await scratch.endMaintenance(id: id, actor: event.actor, now: at)
            return true
        case "readiness.changed":
            guard let deploymentId = event.deploymentId, let hubId = event.hub,
                let check = data["check"]?.stringValue.flatMap(ReadinessCheck.init(rawValue:)),
                let status = data["to"]?.stringValue.flatMap(ReadinessStatus.init(rawValue:)),
                let observedAt = data["observedAt"]?.dateValue, let reportId = data["reportId"]?.stringValue
            else { return false }
            _ = try await scratch.recordReadiness(
                [
                    ReadinessReportInput(
                        id: reportId, deploymentId: deploymentId, hubId: hubId, check: check, status: status,
                        detail: data["detail"]?.stringValue, observedAt: observedAt)
                ], actor: event.actor, now: at)
            return true
        case "drill.started":
            guard let deploymentId = event.deploymentId else { return false }
            _ = try? await scratch.startDrill(
                deploymentId: deploymentId,
                request: DrillRequest(
                    reason: data["reason"]?.stringValue ?? "", actor: event.actor,
                    holdFor: data["holdForSeconds"]?.doubleValue ?? 600,
                    interruptJobs: data["interruptJobs"]?.boolValue ?? false), now: at)
            return true
        default:
            return false
        }
    }

    static func decision(_ event: EventRecord, at: Date) -> ReplayReport.Decision {
        ReplayReport.Decision(
            kind: event.data["kind"]?.stringValue ?? "", fromHub: event.data["from"]?.stringValue,
            toHub: event.data["to"]?.stringValue, at: Timestamp.format(at),
            reason: event.data["reason"]?.stringValue ?? "", trigger: event.data["trigger"]?.stringValue ?? "")
    }

    /// The decisions in a history, per deployment, in order.
    private func decisions(in history: any HistoryStore) async throws -> [String: [ReplayReport.Decision]] {
        var query = EventQuery()
        query.types = ["failover.decided"]
        query.deployment = settings.deploymentId
        var result: [String: [ReplayReport.Decision]] = [:]
        var after: Int64 = 0
        while true {
            let events = try await history.batch(query, afterSeq: after, batchSize: settings.batchSize)
            guard let last = events.last else { break }
            after = last.seq
            for event in events {
                guard let deploymentId = event.deploymentId, let at = Timestamp.parse(event.at) else { continue }
                result[deploymentId, default: []].append(Self.decision(event, at: at))
            }
        }
        return result
    }

    private func window(_ decisions: [ReplayReport.Decision]) -> [ReplayReport.Decision] {
        decisions.filter { decision in
            guard let at = Timestamp.parse(decision.at) else { return false }
            return (settings.since.map { at >= $0 } ?? true) && (settings.until.map { at < $0 } ?? true)
        }
    }

    /// Pairs the decisions in order by move (kind, from, to): a pair within `tolerance` is the same
    /// decision, a pair further apart moved; what is left over was added or removed.
    func compare(_ recorded: [ReplayReport.Decision], _ replayed: [ReplayReport.Decision])
        -> [ReplayReport.Difference]
    {
        var differences: [ReplayReport.Difference] = []
        var unmatched = replayed
        for decision in recorded {
            if let index = unmatched.firstIndex(where: {
                $0.kind == decision.kind && $0.fromHub == decision.fromHub && $0.toHub == decision.toHub
            }) {
                let other = unmatched.remove(at: index)
                let gap = abs(
                    (Timestamp.parse(other.at) ?? .distantPast).timeIntervalSince(
                        Timestamp.parse(decision.at) ?? .distantPast))
                if gap > settings.tolerance {
                    differences.append(
                        .init(
                            type: "moved", kind: decision.kind, fromHub: decision.fromHub, toHub: decision.toHub,
                            recordedAt: decision.at, replayedAt: other.at, reason: other.reason))
                }
            } else {
                differences.append(
                    .init(
                        type: "removed", kind: decision.kind, fromHub: decision.fromHub, toHub: decision.toHub,
                        recordedAt: decision.at, replayedAt: nil, reason: decision.reason))
            }
        }
        for decision in unmatched {
            differences.append(
                .init(
                    type: "added", kind: decision.kind, fromHub: decision.fromHub, toHub: decision.toHub,
                    recordedAt: nil, replayedAt: decision.at, reason: decision.reason))
        }
        return differences
    }
}
