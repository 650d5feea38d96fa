import Foundation
import StandbyApp
import StandbyCore
import StandbyStore

/// One replay, as `standby replay` and `POST /v1/replays` run it: the recorded history fed to a
/// control plane with `candidate`'s topology on a scratch SQLite database, removed afterwards.
public enum ReplayRun {
    public static func run(
        candidate: StandbyConfiguration, history: any HistoryStore, store: any ControlStore,
        alerts: any AlertRepository, settings: ReplaySettings, progress: @escaping @Sendable (Int) -> Void = { _ in }
    ) async throws -> ReplayReport {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
            "standby-replay-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        // The scratch database is thrown away: durability would only slow the replay down.
        let database = try StandbyDatabase(
            settings: DatabaseSettings(path: folder.appendingPathComponent("replay.sqlite").path, synchronous: .off))
        try database.migrate()
        var incident = candidate.incident
        // A replay tells nobody.
        incident.routing = NotificationRouting()
        let scratch = ControlPlane(
            store: SQLiteControlStore(database: database), topology: candidate.topology,
            resubmissionAttempts: candidate.resubmissions.maxAttempts, incident: incident)
        return try await Replayer(
            history: history, recordedStore: store, alerts: alerts, scratch: scratch,
            scratchHistory: EventHistory(database: database), settings: settings, progress: progress
        ).run()
    }
}
