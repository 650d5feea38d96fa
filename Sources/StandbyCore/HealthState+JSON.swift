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

/// The fast reader: what `jsonValue()` (or `JSONEncoder`) wrote, read back from a parsed
/// `JSONValue` without `Codable`. Every decision reads the states of its hubs, and on PostgreSQL,
/// where other instances save them in between, decoding them with `JSONDecoder` cost as much as the
/// rest of a batch's decision.
extension HubHealthState {
    public init(json: JSONValue) throws {
        let members = try StoredMembers(json, path: "hub state")
        self.init(deploymentId: try members.string("deploymentId"), hubId: try members.string("hubId"))
        probes = try members.dictionary("probes").mapValues(ProbeSourceHealth.init(json:))
        azure = try members.dictionary("azure").mapValues(AzureSourceHealth.init(json:))
        health = try members.rawValue("health")
        healthSince = try members.optionalDate("healthSince")
        openWindow = try members.optional("openWindow").map(FailureWindow.init(json:))
        readiness = try members.optional("readiness").map {
            try StoredMembers($0, path: "readiness").members.mapValues(ReadinessObservation.init(json:))
        }
    }
}

extension ProbeSourceHealth {
    init(json: JSONValue) throws {
        let members = try StoredMembers(json, path: "probe source")
        self.init()
        base = try ProbeStreak(json: try members.value("base"))
        samples = try members.array("samples").map { sample in
            let sample = try StoredMembers(sample, path: "probe sample")
            return ProbeSample(at: try sample.date("at"), outcome: try sample.rawValue("outcome"))
        }
        streak = try ProbeStreak(json: try members.value("streak"))
        lastObservedAt = try members.optionalDate("lastObservedAt")
    }
}

extension ProbeStreak {
    init(json: JSONValue) throws {
        let members = try StoredMembers(json, path: "probe streak")
        self.init()
        isDown = try members.bool("isDown")
        failureTimes = try members.array("failureTimes").map { try StoredMembers.date($0, path: "failureTimes") }
        consecutiveFailures = try members.int("consecutiveFailures")
        consecutiveSuccesses = try members.int("consecutiveSuccesses")
        lastOutcome = try members.optional("lastOutcome").map { try StoredMembers.rawValue($0, path: "lastOutcome") }
    }
}

extension AzureSourceHealth {
    init(json: JSONValue) throws {
        let members = try StoredMembers(json, path: "azure source")
        self.init(
            label: try members.string("label"), effect: try members.rawValue("effect"),
            rule: try members.string("rule"), since: try members.date("since"),
            evidence: try members.string("evidence"))
    }
}

extension FailureWindow {
    init(json: JSONValue) throws {
        let members = try StoredMembers(json, path: "failure window")
        self.init(
            id: try members.string("id"), deploymentId: try members.string("deploymentId"),
            hubId: try members.string("hubId"), openedAt: try members.date("openedAt"),
            firstFailureAt: try members.date("firstFailureAt"), lastFailureAt: try members.date("lastFailureAt"),
            failureCount: try members.int("failureCount"),
            sources: try members.array("sources").map { try StoredMembers.string($0, path: "sources") },
            evidence: try members.array("evidence").map { try StoredMembers.string($0, path: "evidence") },
            declaredDownAt: try members.optionalDate("declaredDownAt"), closedAt: try members.optionalDate("closedAt"))
    }
}

extension ReadinessObservation {
    func jsonValue() -> JSONValue {
        var members: [String: JSONValue] = [
            "status": .string(status.rawValue), "observedAt": .date(observedAt), "reportId": .string(reportId),
        ]
        if let detail { members["detail"] = .string(detail) }
        return .object(members)
    }

    init(json: JSONValue) throws {
        let members = try StoredMembers(json, path: "readiness observation")
        self.init(
            status: try members.rawValue("status"), detail: try members.optionalString("detail"),
            observedAt: try members.date("observedAt"), reportId: try members.string("reportId"))
    }
}

/// An object's members as the synthesized `Decodable` would read them (exact keys, a missing or
/// null optional is nil), each failure a `DecodingError` that names the member. A member's path is
/// only written out when it is reported: a hub's state has a hundred members, and it is read with
/// every batch of signals.
private struct StoredMembers {
    let members: [String: JSONValue]
    let path: () -> String

    init(_ value: JSONValue, path: @autoclosure @escaping () -> String) throws {
        guard case .object(let members) = value else { throw Self.corrupted(path(), "is not an object") }
        self.members = members
        self.path = path
    }

    static func corrupted(_ path: String, _ problem: String) -> DecodingError {
        DecodingError.dataCorrupted(DecodingError.Context(codingPath: [], debugDescription: "\(path) \(problem)"))
    }

    /// The path of member `key`, for a failure.
    private func memberPath(_ key: String) -> String { "\(path()).\(key)" }

    func optional(_ key: String) -> JSONValue? {
        guard let value = members[key], value != .null else { return nil }
        return value
    }

    func value(_ key: String) throws -> JSONValue {
        guard let value = optional(key) else { throw Self.corrupted(memberPath(key), "is missing") }
        return value
    }

    func string(_ key: String) throws -> String { try Self.string(try value(key), path: memberPath(key)) }
    func optionalString(_ key: String) throws -> String? {
        try optional(key).map { try Self.string($0, path: memberPath(key)) }
    }
    func date(_ key: String) throws -> Date { try Self.date(try value(key), path: memberPath(key)) }
    func optionalDate(_ key: String) throws -> Date? {
        try optional(key).map { try Self.date($0, path: memberPath(key)) }
    }
    func rawValue<T: RawRepresentable<String>>(_ key: String) throws -> T {
        try Self.rawValue(try value(key), path: memberPath(key))
    }

    func bool(_ key: String) throws -> Bool {
        guard case .bool(let flag) = try value(key) else { throw Self.corrupted(memberPath(key), "is not a boolean") }
        return flag
    }

    func int(_ key: String) throws -> Int {
        guard case .number(let number) = try value(key), let integer = Int(exactly: number) else {
            throw Self.corrupted(memberPath(key), "is not an integer")
        }
        return integer
    }

    func array(_ key: String) throws -> [JSONValue] {
        guard case .array(let items) = try value(key) else { throw Self.corrupted(memberPath(key), "is not an array") }
        return items
    }

    func dictionary(_ key: String) throws -> [String: JSONValue] {
        try StoredMembers(try value(key), path: memberPath(key)).members
    }

    static func string(_ value: JSONValue, path: @autoclosure () -> String) throws -> String {
        guard case .string(let text) = value else { throw corrupted(path(), "is not a string") }
        return text
    }

    /// Seconds since the reference date, as `JSONEncoder`'s default strategy writes a `Date`.
    static func date(_ value: JSONValue, path: @autoclosure () -> String) throws -> Date {
        guard case .number(let seconds) = value else { throw corrupted(path(), "is not a date") }
        return Date(timeIntervalSinceReferenceDate: seconds)
    }

    static func rawValue<T: RawRepresentable<String>>(_ value: JSONValue, path: @autoclosure () -> String) throws -> T {
        guard let parsed = T(rawValue: try string(value, path: path())) else { throw corrupted(path(), "is not known") }
        return parsed
    }
}
