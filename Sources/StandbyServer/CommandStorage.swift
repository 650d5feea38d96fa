import Foundation
import StandbyApp
import StandbyPostgres
import StandbyStore

extension StandbyConfiguration {
    /// Where the store is, for messages: the SQLite file, or the PostgreSQL URL without its password.
    public var storageDescription: String { postgres?.redactedURL ?? database.path }
}

/// The configured storage as a one-off command (`export`, `audit`, `prune`, `migrate`) uses it:
/// migrated first, as `serve` would, whichever the backend.
public struct CommandStorage: Sendable {
    public let history: any HistoryStore
    /// The control plane's state, read-only uses (`standby replay` reads commands from it).
    public let store: any ControlStore
    public let alerts: any AlertRepository
    private let postgres: PostgresStore?

    /// Opens and migrates the configured store.
    public static func open(_ configuration: StandbyConfiguration) async throws -> CommandStorage {
        if let settings = configuration.postgres {
            let store = try PostgresStore(settings: settings, chainKey: configuration.audit.chainKey)
            do {
                try await store.migrate()
            } catch {
                store.shutdown()
                throw error
            }
            return CommandStorage(history: store, store: store, alerts: store, postgres: store)
        }
        let database = try StandbyDatabase(settings: configuration.database, chainKey: configuration.audit.chainKey)
        try database.migrate()
        return CommandStorage(
            history: EventHistory(database: database), store: SQLiteControlStore(database: database),
            alerts: SQLiteAlertRepository(database: database), postgres: nil)
    }

    /// Applies pending migrations; returns every applied migration and those applied now.
    public static func migrate(_ configuration: StandbyConfiguration) async throws -> (all: [String], new: [String]) {
        if let settings = configuration.postgres {
            let store = try PostgresStore(settings: settings)
            defer { store.shutdown() }
            let new = try await store.migrate()
            return (try await store.appliedMigrations(), new)
        }
        let database = try StandbyDatabase(settings: configuration.database)
        let before = Set(try database.appliedMigrations())
        try database.migrate()
        let applied = try database.appliedMigrations()
        return (applied, applied.filter { !before.contains($0) })
    }

    public func close() {
        postgres?.shutdown()
    }
}
