import Foundation
import Logging
import NIOPosix
import PostgresNIO
import StandbyPostgres
import StandbyPrimitives

/// The PostgreSQL server the tests run against: started by `scripts/postgres.sh` (which
/// `scripts/test.sh` runs) and named by `STANDBY_TEST_POSTGRES_URL`. Each test gets a database of
/// its own on it, so tests never see each other's rows.
public enum PostgresTestServer {
    public struct NotConfigured: Error, CustomStringConvertible {
        public var description: String {
            "STANDBY_TEST_POSTGRES_URL is not set: run the tests with scripts/test.sh, or wrap them in "
                + "`scripts/postgres.sh run swift test`, which starts a private PostgreSQL server"
        }
    }

    public static func baseURL() throws -> String {
        guard let url = ProcessInfo.processInfo.environment["STANDBY_TEST_POSTGRES_URL"], !url.isEmpty else {
            throw NotConfigured()
        }
        return url
    }

    /// Creates an empty database on the test server and returns its settings.
    public static func freshDatabase() async throws -> PostgresSettings {
        var settings = try PostgresSettings.parse(url: try baseURL())
        let name = "t_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        try await execute("CREATE DATABASE \(name)", in: settings)
        settings.database = name
        return settings
    }

    /// Runs `sql` on the database of `settings` over a connection of its own (not a store's).
    public static func execute(_ sql: String, in settings: PostgresSettings) async throws {
        let host = settings.hosts[0]
        let connection = try await PostgresConnection.connect(
            on: MultiThreadedEventLoopGroup.singleton.next(),
            configuration: .init(
                host: host.name, port: host.port, username: settings.username, password: settings.password?.value,
                database: settings.database, tls: .disable),
            id: 1, logger: Logger(label: "standby-test-postgres"))
        do {
            _ = try await connection.query(PostgresQuery(unsafeSQL: sql), logger: Logger(label: "t"))
        } catch {
            try? await connection.close()
            throw error
        }
        try await connection.close()
    }

    /// `freshDatabase()` as a `database.url`.
    public static func freshDatabaseURL() async throws -> String {
        let settings = try await freshDatabase()
        let host = settings.hosts[0]
        return "postgres://\(settings.username)@\(host.name):\(host.port)/\(settings.database)?sslmode=disable"
    }
}
