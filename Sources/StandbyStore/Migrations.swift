import GRDB

/// One numbered file of `migrations/`, carried inside the binary.
public struct Migration: Sendable, Hashable {
    public let name: String
    public let sql: String
}

/// The schema history: each file of `migrations/` is one GRDB migration named after the file,
/// applied once and recorded in `grdb_migrations`.
public enum Migrations {
    public static var all: [Migration] { embedded }

    static func migrator() -> DatabaseMigrator {
        var migrator = DatabaseMigrator()
        for migration in embedded {
            migrator.registerMigration(migration.name) { db in
                try db.execute(sql: migration.sql)
            }
        }
        return migrator
    }
}
