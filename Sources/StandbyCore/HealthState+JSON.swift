import Foundation
import StandbyPrimitives

/// A fast writer for the tracker's state, producing exactly the JSON its synthesized `Decodable`
/// reads (dates as seconds since the reference date, nil optionals left out). The state is written
/// with every signal, and `JSONEncoder` was the largest cost of the write path.
extension HubHealthState {
    public func jsonValue() -> JSONValue {
        var members: [String: JSONValue] = [
            "deploymentId": .string(deploymentId),
            "hubId": .string(hubId),
            "probes": .object(probes.mapValues { $0.jsonValue() }),
            "azure": .object(azure.mapValues { $0.jsonValue() }),
            "health": .string(health.rawValue),
        ]
        if let healthSince { members["healthSince"] = .date(healthSince) }
        if let openWindow { members["openWindow"] = openWindow.jsonValue() }
        if let readiness { members["readiness"] = .object(readiness.mapValues { $0.jsonValue() }) }
        return .object(members)
    }
}

extension ProbeSourceHealth {
    func jsonValue() -> JSONValue {
        var members: [String: JSONValue] = [
            "base": base.jsonValue(),
            "samples": .array(samples.map { .object(["at": .date($0.at), "outcome": .string($0.outcome.rawValue)]) }),
            "streak": streak.jsonValue(),
        ]
        if let lastObservedAt { members["lastObservedAt"] = .date(lastObservedAt) }
        return .object(members)
    }
}

extension ProbeStreak {
    func jsonValue() -> JSONValue {
        var members: [String: JSONValue] = [
            "isDown": .bool(isDown),
            "failureTimes": .array(failureTimes.map(JSONValue.date)),
            "consecutiveFailures": .number(Double(consecutiveFailures)),
            "consecutiveSuccesses": .number(Double(consecutiveSuccesses)),
        ]
        if let lastOutcome { members["lastOutcome"] = .string(lastOutcome.rawValue) }
        return .object(members)
    }
}

extension AzureSourceHealth {
    func jsonValue() -> JSONValue {
        .object([
            "label": .string(label), "effect": .string(effect.rawValue), "rule": .string(rule), "since": .date(since),
            "evidence": .string(evidence),
        ])
    }
}

extension FailureWindow {
    func jsonValue() -> JSONValue {
        var members: [String: JSONValue] = [
            "id": .string(id), "deploymentId": .string(deploymentId), "hubId": .string(hubId),
            "openedAt": .date(openedAt), "firstFailureAt": .date(firstFailureAt), "lastFailureAt": .date(lastFailureAt),
            "failureCount": .number(Double(failureCount)), "sources": .strings(sources), "evidence": .strings(evidence),
        ]
        if let declaredDownAt { members["declaredDownAt"] = .date(declaredDownAt) }
        if let closedAt { members["closedAt"] = .date(closedAt) }
        return .object(members)
    }
}

extension JSONValue {
    /// A date as `JSONEncoder`'s default strategy writes it: seconds since the reference date.
    static func date(_ date: Date) -> JSONValue { .number(date.timeIntervalSinceReferenceDate) }
}

extension ReadinessObservation {
    func jsonValue() -> JSONValue {
        var members: [String: JSONValue] = [
            "status": .string(status.rawValue), "observedAt": .date(observedAt), "reportId": .string(reportId),
        ]
        if let detail { members["detail"] = .string(detail) }
        return .object(members)
    }
}
