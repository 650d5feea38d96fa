import Foundation
import StandbyCore
import StandbyPrimitives
import Synchronization

/// The Azure Monitor payloads published by Microsoft (see Tests/Fixtures/azure-monitor/SOURCES.md).
public enum Fixtures {
    public static let folder = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/azure-monitor")

    public static var allNames: [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        return names.filter { $0.hasSuffix(".json") }.sorted()
    }

    public static func data(_ name: String) throws -> Data {
        try Data(contentsOf: folder.appendingPathComponent(name))
    }

    public static func json(_ name: String) throws -> JSONValue {
        try JSONValue.decode(data(name))
    }

    /// An Azure Resource Manager answer in the documented shape (Tests/Fixtures/azure-resource-manager/SOURCES.md).
    public static func resourceManager(_ name: String) throws -> JSONValue {
        try JSONValue.decode(
            Data(
                contentsOf: folder.deletingLastPathComponent().appendingPathComponent("azure-resource-manager/\(name)"))
        )
    }

    /// A published `alertContext` fragment placed in a common-schema envelope, as Azure sends it.
    public static func commonEnvelope(
        alertContext: JSONValue, monitoringService: String, signalType: String, condition: String = "Fired",
        rule: String = "fragment-rule", targets: [String] = []
    ) -> Data {
        let document: JSONValue = .object([
            "schemaId": .string("azureMonitorCommonAlertSchema"),
            "data": .object([
                "essentials": .object([
                    "alertId": .string("/subscriptions/s/providers/Microsoft.AlertsManagement/alerts/\(rule)"),
                    "alertRule": .string(rule),
                    "severity": .string("Sev2"),
                    "signalType": .string(signalType),
                    "monitorCondition": .string(condition),
                    "monitoringService": .string(monitoringService),
                    "alertTargetIDs": .array(targets.map(JSONValue.string)),
                    "firedDateTime": .string("2026-11-28T10:00:00.1234567Z"),
                ]),
                "alertContext": alertContext,
            ]),
        ])
        return document.canonicalData()
    }
}

/// A folder under the system temp directory, removed when the value goes away.
public final class TemporaryFolder: Sendable {
    public let url: URL

    public init() {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("standby-tests-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    public func path(_ name: String) -> String { url.appendingPathComponent(name).path }

    deinit {
        try? FileManager.default.removeItem(at: url)
    }
}

/// A clock the test moves by hand.
public final class ManualTimeSource: TimeSource {
    private let current: Mutex<Date>

    public init(_ start: Date = Timestamp.parse("2026-11-28T10:00:00Z")!) {
        current = Mutex(start)
    }

    public func now() -> Date { current.withLock { $0 } }

    public func advance(by seconds: TimeInterval) {
        current.withLock { $0 += seconds }
    }

    public func set(_ date: Date) {
        current.withLock { $0 = date }
    }
}

/// IDs `id-1`, `id-2`, ...: the same run gives the same IDs.
public final class CountingIDs: IDSource {
    private let counter = Mutex(0)
    private let prefix: String

    public init(prefix: String = "id") {
        self.prefix = prefix
    }

    public func next() -> String {
        let value = counter.withLock { count in
            count += 1
            return count
        }
        return "\(prefix)-\(value)"
    }
}

/// Runs blocking work (sockets, child processes, sleeps) on a dispatch thread, never on the
/// cooperative pool the server under test needs for its own handlers.
public func blocking<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        DispatchQueue.global().async { continuation.resume(returning: work()) }
    }
}

/// Polls `condition` every 10 ms until it holds; throws `ConditionNeverHeld` after `timeout`.
/// For ordering steps of a test on what the code under test reports, never on sleeps.
public func waitUntil(timeout: Duration = .seconds(10), _ condition: () -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while !condition() {
        guard ContinuousClock.now < deadline else { throw ConditionNeverHeld(timeout: timeout) }
        try await Task.sleep(for: .milliseconds(10))
    }
}

public struct ConditionNeverHeld: Error, CustomStringConvertible {
    public var timeout: Duration
    public var description: String { "the condition did not hold within \(timeout)" }
}
