import Foundation
import StandbyCore
import StandbyPrimitives

/// What a deployment's recorded history says about its availability over a period: computed from
/// the events, never estimated.
///
/// What counts as down: a moment at which no serving hub is up, i.e. every hub that serves (as the
/// engine recorded it: traffic moves when a move is decided) has been declared DOWN. A hub whose
/// health is unknown or degraded still counts as up (no evidence says it failed). Not counted:
/// moments when every DOWN serving hub is in a maintenance window (planned work), and moments
/// during a drill (a rehearsal chosen by an operator). Dry-run decisions move nothing.
public struct AvailabilityReport: Sendable, Hashable, Encodable {
    public struct Period: Sendable, Hashable, Encodable {
        public var from: String
        public var to: String
        public var seconds: Double
        public var reason: String
    }

    public struct HubDowntime: Sendable, Hashable, Encodable {
        public var hub: String
        /// Time the hub was DOWN in the period, whether it served or not.
        public var downSeconds: Double
    }

    public struct Durations: Sendable, Hashable, Encodable {
        public var count: Int
        public var meanSeconds: Double?
        public var maxSeconds: Double?

        init(_ values: [Double]) {
            count = values.count
            meanSeconds = values.isEmpty ? nil : values.reduce(0, +) / Double(values.count)
            maxSeconds = values.max()
        }
    }

    public var deployment: String
    public var pattern: String
    public var since: String
    public var until: String
    public var periodSeconds: Double
    /// The fraction of the period with a serving hub that was up.
    public var availability: Double
    /// The pattern's promise: 0.999, 0.9995 or 0.9999.
    public var target: Double
    public var met: Bool
    public var downtimeSeconds: Double
    public var hubs: [HubDowntime]
    public var failovers: Int
    public var failbacks: Int
    /// From the first failure of the window (or the hub's fall) that decided a failover, to the decision.
    public var detection: Durations
    /// From a failover's decision to all its commands acknowledged.
    public var recovery: Durations
    /// The periods that count as down, with why.
    public var downPeriods: [Period]
    /// Periods a serving hub was DOWN that do not count, with why (maintenance, drill).
    public var excludedPeriods: [Period]

    public static func target(for pattern: DeploymentPattern) -> Double {
        switch pattern {
        case .singleRegion: return 0.999
        case .activePassive: return 0.9995
        case .activeActive: return 0.9999
        }
    }

    /// Folds the deployment's history over [since, until), reading it in batches (memory stays flat).
    public static func build(
        _ deployment: DeploymentDefinition, history: any HistoryStore, since: Date, until: Date, batchSize: Int = 2000
    ) async throws -> AvailabilityReport {
        var fold = AvailabilityFold(deployment: deployment, since: since, until: until)
        var query = EventQuery()
        query.deployment = deployment.id
        query.until = until
        var after: Int64 = 0
        while true {
            let events = try await history.batch(query, afterSeq: after, batchSize: batchSize)
            guard let last = events.last else { break }
            for event in events { fold.apply(event) }
            after = last.seq
        }
        return fold.finish()
    }
}

/// The pure fold behind `AvailabilityReport`: events in, in order; the report out.
public struct AvailabilityFold: Sendable {
    let deployment: DeploymentDefinition
    let since: Date
    let until: Date
    private var health: [String: HubHealth] = [:]
    private var downSince: [String: Date] = [:]
    private var firstFailure: [String: Date] = [:]
    private var serving: [String]
    private var maintenance: [String: Set<String>] = [:]
    private var drills: Set<String> = []
    private var clock: Date
    private var hubDown: [String: Double] = [:]
    private var downPeriods: [AvailabilityReport.Period] = []
    private var excluded: [AvailabilityReport.Period] = []
    private var decided: [String: Date] = [:]
    private var detections: [Double] = []
    private var recoveries: [Double] = []
    private var failovers = 0
    private var failbacks = 0

    public init(deployment: DeploymentDefinition, since: Date, until: Date) {
        self.deployment = deployment
        self.since = since
        self.until = until
        serving = DeploymentState.initial(for: deployment).serving
        clock = since
    }

    public mutating func apply(_ event: EventRecord) {
        guard let at = Timestamp.parse(event.at) else { return }
        advance(to: at)
        let data = event.data
        switch event.type {
        case "hub.health_changed":
            guard let hub = event.hub, let to = data["to"]?.stringValue.flatMap(HubHealth.init(rawValue:)) else {
                return
            }
            if to == .down, health[hub] != .down { downSince[hub] = at }
            if to != .down { downSince[hub] = nil }
            health[hub] = to
        case "window.declared_down":
            if let hub = event.hub, let first = data["firstFailureAt"]?.dateValue { firstFailure[hub] = first }
        case "failover.decided":
            guard data["dryRun"]?.boolValue != true, let id = data["failoverEventId"]?.stringValue,
                let kind = data["kind"]?.stringValue.flatMap(FailoverKind.init(rawValue:))
            else { return }
            let from = data["from"]?.stringValue
            let to = data["to"]?.stringValue
            let isDrill = data["trigger"]?.stringValue == FailoverTrigger.drill.rawValue
            switch kind {
            case .failover, .failback:
                if let to { serving = [to] }
            case .rotationRemove:
                let removed = Set((from ?? "").split(separator: ",").map(String.init))
                serving.removeAll { removed.contains($0) }
            case .rotationRestore:
                for hub in (to ?? "").split(separator: ",").map(String.init) where !serving.contains(hub) {
                    serving.append(hub)
                }
            case .outage, .outageEnded:
                break
            }
            guard !isDrill, at >= since, at < until else { return }
            switch kind {
            case .failover, .rotationRemove:
                failovers += 1
                decided[id] = at
                let fromHubs = (from ?? "").split(separator: ",").map(String.init)
                if let start = fromHubs.compactMap({ firstFailure[$0] ?? downSince[$0] }).min() {
                    detections.append(max(0, at.timeIntervalSince(start)))
                }
            case .failback, .rotationRestore:
                failbacks += 1
                decided[id] = at
            case .outage, .outageEnded:
                break
            }
        case "failover.completed":
            if let id = data["failoverEventId"]?.stringValue, let decidedAt = decided.removeValue(forKey: id) {
                recoveries.append(at.timeIntervalSince(decidedAt))
            }
        case "maintenance.started":
            if let id = data["maintenanceWindowId"]?.stringValue {
                maintenance[id] = Set(data["hubs"]?.arrayValue?.compactMap(\.stringValue) ?? [])
            }
        case "maintenance.ended":
            if let id = data["maintenanceWindowId"]?.stringValue { maintenance[id] = nil }
        case "drill.started":
            if let id = data["drillId"]?.stringValue { drills.insert(id) }
        case "drill.finished":
            if let id = data["drillId"]?.stringValue { drills.remove(id) }
        default:
            break
        }
    }

    /// Accounts the time from the clock to `moment` (clipped to the period) to the state as it stood.
    private mutating func advance(to moment: Date) {
        let end = min(moment, until)
        let start = max(clock, since)
        defer { clock = max(clock, moment) }
        guard end > start else { return }
        let seconds = end.timeIntervalSince(start)
        for (hub, state) in health where state == .down { hubDown[hub, default: 0] += seconds }
        let downServing = serving.filter { health[$0] == .down }
        guard !serving.isEmpty, downServing.count == serving.count else { return }
        let covered = Set(maintenance.values.flatMap { $0 })
        let reason =
            serving.count == 1
            ? "\(serving[0]) served and was DOWN" : "every serving hub was DOWN: \(serving.joined(separator: ", "))"
        if !drills.isEmpty {
            append(&excluded, start, end, "drill \(drills.sorted().joined(separator: ", ")): \(reason)")
        } else if downServing.allSatisfy(covered.contains) {
            let windows = maintenance.filter { !$0.value.isDisjoint(with: downServing) }.keys.sorted()
            append(&excluded, start, end, "maintenance \(windows.joined(separator: ", ")): \(reason)")
        } else {
            append(&downPeriods, start, end, reason)
        }
    }

    private func append(_ periods: inout [AvailabilityReport.Period], _ start: Date, _ end: Date, _ reason: String) {
        let from = Timestamp.format(start)
        if var last = periods.last, last.to == from, last.reason == reason {
            last.to = Timestamp.format(end)
            last.seconds += end.timeIntervalSince(start)
            periods[periods.count - 1] = last
        } else {
            periods.append(
                .init(from: from, to: Timestamp.format(end), seconds: end.timeIntervalSince(start), reason: reason))
        }
    }

    public mutating func finish() -> AvailabilityReport {
        advance(to: until)
        let period = max(0, until.timeIntervalSince(since))
        let downtime = downPeriods.reduce(0) { $0 + $1.seconds }
        let availability = period > 0 ? 1 - downtime / period : 1
        let target = AvailabilityReport.target(for: deployment.pattern)
        return AvailabilityReport(
            deployment: deployment.id, pattern: deployment.pattern.rawValue, since: Timestamp.format(since),
            until: Timestamp.format(until), periodSeconds: period, availability: availability, target: target,
            met: availability >= target, downtimeSeconds: downtime,
            hubs: deployment.hubs.map { .init(hub: $0.id, downSeconds: hubDown[$0.id] ?? 0) }, failovers: failovers,
            failbacks: failbacks, detection: .init(detections), recovery: .init(recoveries), downPeriods: downPeriods,
            excludedPeriods: excluded)
    }
}
