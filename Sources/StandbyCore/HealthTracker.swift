import Foundation
import StandbyPrimitives

public enum ObservationOutcome: String, Sendable, Codable, CaseIterable {
    case success
    case failure
    case degraded
}

/// One probe result about one hub from one source, as the tracker sees it.
public struct ProbeObservation: Sendable, Hashable {
    public var source: String
    public var outcome: ObservationOutcome
    public var observedAt: Date
    /// What proves it: `report:<id>`.
    public var evidence: String

    public init(source: String, outcome: ObservationOutcome, observedAt: Date, evidence: String) {
        self.source = source
        self.outcome = outcome
        self.observedAt = observedAt
        self.evidence = evidence
    }
}

/// What an Azure alert means for one hub, under that deployment's policy.
public struct AzureSignal: Sendable, Hashable {
    public enum Effect: String, Sendable, Codable {
        /// The hub is DOWN until the same source clears.
        case down
        /// Evidence only.
        case degraded
        /// Resolved.
        case clear
    }

    public var source: String
    public var label: String
    public var effect: Effect
    public var at: Date
    public var evidence: String
    /// Which rule of DESIGN §4 made it DOWN (or why it is only evidence).
    public var rule: String

    public init(source: String, label: String, effect: Effect, at: Date, evidence: String, rule: String) {
        self.source = source
        self.label = label
        self.effect = effect
        self.at = at
        self.evidence = evidence
        self.rule = rule
    }

    /// Reads an alert against a hub's policy (DESIGN §4, Azure sources).
    public static func from(
        _ alert: NormalizedAlert, alertId: String, hub: HubDefinition, policy: Policy, receivedAt: Date
    ) -> AzureSignal {
        let at = alert.observedAt ?? receivedAt
        let evidence = "alert:\(alertId)"
        let source = "azure:\(alert.key)"
        let label = alert.rule ?? alert.monitoringService ?? alert.kind.rawValue
        func signal(_ effect: Effect, _ rule: String) -> AzureSignal {
            AzureSignal(source: source, label: label, effect: effect, at: at, evidence: evidence, rule: rule)
        }
        if alert.condition == .resolved { return signal(.clear, "resolved") }
        // Test notifications (Azure's "Test action group") are evidence, never a reason to move traffic.
        if alert.isTest { return signal(.degraded, "test-notification") }
        if let serviceHealth = alert.serviceHealth {
            let concernsHub = serviceHealth.impactedServices.contains { impact in
                policy.alerts.coversService(impact.service) && impact.regions.contains(where: hub.isInRegion(named:))
            }
            if serviceHealth.isIncident, concernsHub { return signal(.down, "service-health-incident") }
            return signal(.degraded, "service-health-\((serviceHealth.incidentType ?? "notice").lowercased())")
        }
        if let resourceHealth = alert.resourceHealth {
            if resourceHealth.isPlatformOutage { return signal(.down, "resource-health-platform-unavailable") }
            return signal(
                .degraded, "resource-health-\((resourceHealth.currentHealthStatus ?? "unknown").lowercased())")
        }
        if let rule = alert.rule, policy.alerts.isFailoverRule(rule) { return signal(.down, "failover-rule") }
        return signal(.degraded, "alert")
    }
}

public enum SourceState: String, Sendable, Codable, CaseIterable {
    case up
    /// Failing, but not (yet) DOWN: a streak below the threshold, or non-failover evidence.
    case degraded
    case down
    /// No report for `staleAfter`: unknown, never counted as failed.
    case stale
}

public enum HubHealth: String, Sendable, Codable, CaseIterable {
    case up
    case degraded
    case down
    case unknown
}

/// The sticky DOWN/UP machine of one probe source (DESIGN §4).
public struct ProbeStreak: Sendable, Hashable, Codable {
    public var isDown = false
    /// Times of the current run of consecutive failures (the last `failureThreshold` of them).
    public var failureTimes: [Date] = []
    public var consecutiveFailures = 0
    public var consecutiveSuccesses = 0
    public var lastOutcome: ObservationOutcome?

    public init() {}

    mutating func apply(_ outcome: ObservationOutcome, at: Date, policy: Policy) {
        lastOutcome = outcome
        switch outcome {
        case .failure:
            consecutiveSuccesses = 0
            consecutiveFailures += 1
            failureTimes.append(at)
            if failureTimes.count > policy.failureThreshold {
                failureTimes.removeFirst(failureTimes.count - policy.failureThreshold)
            }
            if !isDown, failureTimes.count >= policy.failureThreshold,
                let first = failureTimes.first, let last = failureTimes.last,
                last.timeIntervalSince(first) <= policy.window
            {
                isDown = true
            }
        case .success:
            consecutiveFailures = 0
            failureTimes = []
            consecutiveSuccesses += 1
            if isDown, consecutiveSuccesses >= policy.recoveryThreshold { isDown = false }
        case .degraded:
            consecutiveFailures = 0
            failureTimes = []
            consecutiveSuccesses = 0
        }
    }
}

public struct ProbeSample: Sendable, Hashable, Codable {
    public var at: Date
    public var outcome: ObservationOutcome
}

/// One probe source: its recent samples in `observedAt` order, so that a late report is placed
/// where it belongs and the streak is replayed.
public struct ProbeSourceHealth: Sendable, Hashable, Codable {
    public var base = ProbeStreak()
    public var samples: [ProbeSample] = []
    public var streak = ProbeStreak()
    public var lastObservedAt: Date?

    public init() {}

    static let retainedSamples = 16

    /// Returns false when the sample is older than everything retained (too late to place).
    mutating func insert(_ sample: ProbeSample, policy: Policy) -> Bool {
        let cap = max(Self.retainedSamples, 2 * (policy.failureThreshold + policy.recoveryThreshold))
        // Once the history is full, older samples were folded into `base`: one older still cannot be placed.
        if samples.count >= cap, let oldest = samples.first, sample.at < oldest.at { return false }
        let index = samples.firstIndex { $0.at > sample.at } ?? samples.endIndex
        samples.insert(sample, at: index)
        while samples.count > cap {
            let evicted = samples.removeFirst()
            base.apply(evicted.outcome, at: evicted.at, policy: policy)
        }
        streak = base
        for sample in samples { streak.apply(sample.outcome, at: sample.at, policy: policy) }
        lastObservedAt = max(lastObservedAt ?? sample.at, sample.at)
        return true
    }

    public func state(now: Date, policy: Policy) -> SourceState {
        guard let last = lastObservedAt, now.timeIntervalSince(last) <= policy.staleAfter else { return .stale }
        if streak.isDown { return .down }
        if streak.consecutiveFailures > 0 || streak.lastOutcome == .degraded { return .degraded }
        return .up
    }
}

public struct AzureSourceHealth: Sendable, Hashable, Codable {
    public var label: String
    public var effect: AzureSignal.Effect
    public var rule: String
    public var since: Date
    public var evidence: String

    public var state: SourceState {
        switch effect {
        case .down: return .down
        case .degraded: return .degraded
        case .clear: return .up
        }
    }
}

/// An interval during which a hub was failing (DESIGN §3).
public struct FailureWindow: Sendable, Hashable, Codable {
    public var id: String
    public var deploymentId: String
    public var hubId: String
    public var openedAt: Date
    public var firstFailureAt: Date
    public var lastFailureAt: Date
    public var failureCount: Int
    public var sources: [String]
    public var evidence: [String]
    public var declaredDownAt: Date?
    public var closedAt: Date?

    static let maximumEvidence = 50

    mutating func record(source: String, at: Date, evidence item: String, countsAsFailure: Bool) {
        if countsAsFailure {
            failureCount += 1
            firstFailureAt = min(firstFailureAt, at)
            lastFailureAt = max(lastFailureAt, at)
        }
        if !sources.contains(source) { sources.append(source) }
        if evidence.count < Self.maximumEvidence, !evidence.contains(item) { evidence.append(item) }
    }
}

/// Everything Standby knows about one hub's health: per-source detail, the derived health, and
/// the open failure window.
public struct HubHealthState: Sendable, Hashable, Codable {
    public var deploymentId: String
    public var hubId: String
    public var probes: [String: ProbeSourceHealth] = [:]
    public var azure: [String: AzureSourceHealth] = [:]
    public var health: HubHealth = .unknown
    public var healthSince: Date?
    public var openWindow: FailureWindow?
    /// The latest readiness report per check (`ReadinessCheck` raw value); optional, so that states
    /// stored before readiness existed decode as they are.
    public var readiness: [String: ReadinessObservation]?

    public init(deploymentId: String, hubId: String) {
        self.deploymentId = deploymentId
        self.hubId = hubId
    }

    public func sourceStates(now: Date, policy: Policy) -> [String: SourceState] {
        var states: [String: SourceState] = [:]
        forEachSourceState(now: now, policy: policy) { source, state in states[source] = state }
        return states
    }

    /// Every source's state, without building a dictionary (it runs with every signal). An Azure
    /// source hides a probe of the same name.
    func forEachSourceState(now: Date, policy: Policy, _ body: (String, SourceState) -> Void) {
        for (source, probe) in probes where azure[source] == nil { body(source, probe.state(now: now, policy: policy)) }
        for (source, signal) in azure { body(source, signal.state) }
    }

    /// Since when the hub has been continuously `up`, if it is.
    public var healthySince: Date? { health == .up ? healthSince : nil }
}

/// What changed for a hub, for the history and the failure-window table.
public enum HealthChange: Sendable, Hashable {
    case healthChanged(from: HubHealth, to: HubHealth)
    case windowOpened(FailureWindow)
    case windowUpdated(FailureWindow)
    case windowDeclaredDown(FailureWindow)
    case windowClosed(FailureWindow)
    case lateSampleIgnored(source: String)
}

/// The pure health tracker of DESIGN §4: observations and time in, new state and changes out.
public enum HealthTracker {
    public static func apply(
        _ observation: ProbeObservation, to state: inout HubHealthState, policy: Policy, now: Date, ids: any IDSource
    ) -> [HealthChange] {
        var probe = state.probes[observation.source] ?? ProbeSourceHealth()
        guard probe.insert(ProbeSample(at: observation.observedAt, outcome: observation.outcome), policy: policy) else {
            return [.lateSampleIgnored(source: observation.source)]
        }
        state.probes[observation.source] = probe
        var changes: [HealthChange] = []
        if observation.outcome != .success {
            changes += note(
                source: observation.source, at: observation.observedAt, evidence: observation.evidence,
                isFailure: observation.outcome == .failure, in: &state, ids: ids)
        }
        return changes + settle(&state, policy: policy, now: now)
    }

    public static func apply(
        _ signal: AzureSignal, to state: inout HubHealthState, policy: Policy, now: Date, ids: any IDSource
    ) -> [HealthChange] {
        if let existing = state.azure[signal.source], existing.since > signal.at {
            return [.lateSampleIgnored(source: signal.source)]
        }
        state.azure[signal.source] = AzureSourceHealth(
            label: signal.label, effect: signal.effect, rule: signal.rule, since: signal.at, evidence: signal.evidence)
        forgetOldEvidence(in: &state)
        var changes: [HealthChange] = []
        if signal.effect != .clear {
            changes += note(
                source: signal.source, at: signal.at, evidence: signal.evidence, isFailure: signal.effect == .down,
                in: &state, ids: ids)
        }
        return changes + settle(&state, policy: policy, now: now)
    }

    /// Time passing: staleness, and forgetting resolved Azure sources after a day.
    public static func refresh(_ state: inout HubHealthState, policy: Policy, now: Date) -> [HealthChange] {
        state.azure = state.azure.filter { $0.value.effect != .clear || now.timeIntervalSince($0.value.since) < 86_400 }
        return settle(&state, policy: policy, now: now)
    }

    /// During an alert storm every resource of a region alerts: keep every DOWN source, but only the
    /// most recent evidence, so that a hub's state (read and written with each signal) stays small.
    static let retainedAzureEvidence = 16

    static func forgetOldEvidence(in state: inout HubHealthState) {
        var evidenceCount = state.azure.values.count { $0.effect != .down }
        // Usually one over the limit (the signal just added): drop the oldest, without sorting them all.
        while evidenceCount > retainedAzureEvidence {
            guard
                let oldest = state.azure.lazy.filter({ $0.value.effect != .down })
                    .min(by: { ($0.value.since, $0.key) < ($1.value.since, $1.key) })
            else { return }
            state.azure.removeValue(forKey: oldest.key)
            evidenceCount -= 1
        }
    }

    public static func health(of state: HubHealthState, policy: Policy, now: Date) -> HubHealth {
        var down = 0
        var degraded = false
        var up = false
        state.forEachSourceState(now: now, policy: policy) { _, sourceState in
            switch sourceState {
            case .down: down += 1
            case .degraded: degraded = true
            case .up: up = true
            case .stale: break
            }
        }
        if down >= policy.quorum { return .down }
        if down > 0 || degraded { return .degraded }
        if up { return .up }
        return .unknown
    }

    private static func note(
        source: String, at: Date, evidence: String, isFailure: Bool, in state: inout HubHealthState,
        ids: any IDSource
    ) -> [HealthChange] {
        if var window = state.openWindow {
            window.record(source: source, at: at, evidence: evidence, countsAsFailure: isFailure)
            state.openWindow = window
            return [.windowUpdated(window)]
        }
        // A window opens at the first failure after health; evidence alone does not open one.
        guard isFailure else { return [] }
        let window = FailureWindow(
            id: ids.next(), deploymentId: state.deploymentId, hubId: state.hubId, openedAt: at, firstFailureAt: at,
            lastFailureAt: at, failureCount: 1, sources: [source], evidence: [evidence])
        state.openWindow = window
        return [.windowOpened(window)]
    }

    private static func settle(_ state: inout HubHealthState, policy: Policy, now: Date) -> [HealthChange] {
        var changes: [HealthChange] = []
        let health = health(of: state, policy: policy, now: now)
        if health != state.health {
            changes.append(.healthChanged(from: state.health, to: health))
            state.health = health
            state.healthSince = now
        }
        if var window = state.openWindow {
            if health == .down, window.declaredDownAt == nil {
                window.declaredDownAt = now
                state.openWindow = window
                changes.append(.windowDeclaredDown(window))
            } else if health == .up {
                window.closedAt = now
                state.openWindow = nil
                changes.append(.windowClosed(window))
            }
        }
        return changes
    }
}
