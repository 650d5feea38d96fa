import ConfigReading
import Foundation
import Hummingbird
import StandbyApp
import StandbyCore
import StandbyPrimitives

extension ReplayReport: ResponseEncodable {}

/// `POST /v1/replays`: `standby replay` over HTTP, bounded in time range and run time.
struct ReplaysController {
    static let defaultRange: TimeInterval = 7 * 86_400
    static let maximumRange: TimeInterval = 31 * 86_400
    static let maximumRunTime: Duration = .seconds(60)

    let configuration: StandbyConfiguration
    let history: any HistoryStore
    let store: any ControlStore
    let alerts: any AlertRepository
    let timeSource: any TimeSource

    var endpoints: RouteCollection<StandbyRequestContext> {
        let routes = RouteCollection(context: StandbyRequestContext.self)
        routes.post(use: replay)
        return routes
    }

    @Sendable func replay(_ request: Request, context: StandbyRequestContext) async throws -> ReplayReport {
        let body = try await JSONBody(request, limit: 256 * 1024)
        guard let fields = body.document.objectValue else { throw Problem.badRequest("the body must be a JSON object") }
        let allowed: Set<String> = ["policy", "policies", "deployments", "deployment", "since", "until"]
        if let unknown = fields.keys.sorted().first(where: { !allowed.contains($0) }) {
            throw Problem.unprocessable(
                "unknown field (expected: \(allowed.sorted().joined(separator: ", ")))", field: unknown)
        }
        // The candidate as YAML (JSON is YAML) laid over the live configuration.
        let overlay = JSONValue.object(fields.filter { ["policy", "policies", "deployments"].contains($0.key) })
        let candidate: StandbyConfiguration
        do {
            candidate = try ConfigLoader.candidate(
                over: configuration, candidate: overlay.canonicalString(), file: "candidate")
        } catch let error as ConfigError {
            throw Problem.unprocessable(
                error.problems.map { "\($0.path): \($0.reason)" }.joined(separator: "; "),
                field: error.problems.first?.path)
        }
        var settings = ReplaySettings()
        settings.deploymentId = try body.optionalString("deployment")
        if let id = settings.deploymentId, candidate.topology.deployment(id) == nil {
            throw Problem.unprocessable("unknown deployment \"\(id)\"", field: "deployment")
        }
        let now = timeSource.now()
        let until = try body.optionalString("until").map { try Self.date($0, field: "until") } ?? now
        let since =
            try body.optionalString("since").map { try Self.date($0, field: "since") }
            ?? until.addingTimeInterval(-Self.defaultRange)
        guard since < until else { throw Problem.unprocessable("since must be before until", field: "since") }
        guard until.timeIntervalSince(since) <= Self.maximumRange else {
            throw Problem.unprocessable("a replay over HTTP covers at most 31 days; use standby replay", field: "since")
        }
        settings.since = since
        settings.until = min(until, now)
        let history = history
        let store = store
        let alerts = alerts
        let bounded = settings
        return try await withThrowingTaskGroup(of: ReplayReport?.self) { group in
            group.addTask {
                try await ReplayRun.run(
                    candidate: candidate, history: history, store: store, alerts: alerts, settings: bounded)
            }
            group.addTask {
                try await Task.sleep(for: Self.maximumRunTime)
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let report = first else {
                throw Problem.unprocessable(
                    "the replay ran longer than \(Self.maximumRunTime); narrow the range or use standby replay",
                    field: "since")
            }
            return report
        }
    }

    static func date(_ text: String, field: String) throws -> Date {
        guard let date = Timestamp.parse(text) else {
            throw Problem.unprocessable("\(field) must be an ISO-8601 time", field: field)
        }
        return date
    }
}
