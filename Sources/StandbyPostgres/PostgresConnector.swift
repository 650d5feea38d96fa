import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import PostgresNIO
import StandbyApp
import StandbyPrimitives
import Synchronization

/// The instance's connections to the writable primary of the host list. PostgresNIO connects to
/// one host, so the host list is handled here as libpq's `target_session_attrs=read-write` does:
/// each host is tried in order until one accepts writes (`transaction_read_only` is off); a
/// connection that breaks, or a server that answers "read-only transaction" (SQLSTATE 25006, a
/// demoted primary), drops every idle connection and the next one looks for the primary again.
///
/// Connections are used blocking, from the store's own threads (a unit of work is synchronous),
/// never from the event loops that serve them.
final class PostgresConnector: Sendable {
    let settings: PostgresSettings
    private let eventLoops: MultiThreadedEventLoopGroup
    private let logger: Logger
    private let tlsContext: NIOSSLContext?
    private let state = Mutex(State())
    private let returned = NSCondition()
    private let nextConnectionID = Atomic<Int>(0)

    private struct State {
        var idle: [Pooled] = []
        var open = 0
        /// The host that last answered as a writable primary: tried first next time.
        var primary: PostgresSettings.Host?
        /// Bumped whenever the primary may have changed: connections of an older generation are
        /// closed instead of going back to the pool.
        var generation = 0
    }

    /// A connection of the pool and the statements prepared on it, which go with it.
    struct Pooled {
        let connection: PostgresConnection
        let statements = PreparedStatements()
    }

    /// A connection borrowed from the pool, with the generation it belongs to.
    struct Lease {
        let pooled: Pooled
        let generation: Int
        var connection: PostgresConnection { pooled.connection }
    }

    init(settings: PostgresSettings, logger: Logger) throws {
        self.settings = settings
        self.logger = logger
        eventLoops = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        switch settings.tls {
        case .disable:
            tlsContext = nil
        case .require:
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.certificateVerification = .none
            tlsContext = try NIOSSLContext(configuration: configuration)
        case .verifyFull:
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.certificateVerification = .fullVerification
            if let caFile = settings.caFile {
                configuration.trustRoots = .file(caFile)
            }
            tlsContext = try NIOSSLContext(configuration: configuration)
        }
    }

    /// The host currently taken for the primary, if any connection found one.
    var primaryHost: PostgresSettings.Host? { state.withLock { $0.primary } }

    func shutdown() {
        let idle = state.withLock { state -> [Pooled] in
            defer { state.idle = [] }
            return state.idle
        }
        for pooled in idle {
            let closing: EventLoopFuture<Void> = pooled.connection.close()
            try? closing.wait()
        }
        try? eventLoops.syncShutdownGracefully()
    }

    /// Runs `body` on a connection to the primary, blocking. Storage trouble (no primary, a broken
    /// connection, a read-only server) is thrown as `StoreError.unavailable`, and the connection
    /// is not reused.
    func withConnection<T>(_ body: (Pooled) throws -> T) throws -> T {
        let lease = try acquire()
        do {
            let value = try body(lease.pooled)
            release(lease, broken: false)
            return value
        } catch {
            let classified = PostgresErrors.classify(error)
            let broken = PostgresErrors.breaksConnection(error)
            if PostgresErrors.primaryMayHaveChanged(error) { forgetPrimary() }
            release(lease, broken: broken || lease.connection.isClosed)
            throw classified
        }
    }

    private func acquire() throws -> Lease {
        enum Next {
            case reuse(Pooled, Int)
            case open(Int)
            case wait
        }
        let deadline = Date().addingTimeInterval(settings.connectTimeout)
        while true {
            let next = state.withLock { state -> Next in
                while let pooled = state.idle.popLast() {
                    if !pooled.connection.isClosed { return .reuse(pooled, state.generation) }
                    state.open -= 1
                }
                if state.open < settings.poolSize {
                    state.open += 1
                    return .open(state.generation)
                }
                return .wait
            }
            switch next {
            case .reuse(let pooled, let generation):
                return Lease(pooled: pooled, generation: generation)
            case .open(let generation):
                do {
                    return Lease(pooled: Pooled(connection: try connectToPrimary()), generation: generation)
                } catch {
                    state.withLock { $0.open -= 1 }
                    signalReturned()
                    throw error
                }
            case .wait:
                returned.lock()
                let signalled = returned.wait(until: min(deadline, Date().addingTimeInterval(0.05)))
                returned.unlock()
                if !signalled, Date() >= deadline {
                    throw StoreError.unavailable("every PostgreSQL connection of this instance is busy")
                }
            }
        }
    }

    private func release(_ lease: Lease, broken: Bool) {
        let close = state.withLock { state -> Bool in
            if broken || lease.generation != state.generation || lease.connection.isClosed {
                state.open -= 1
                return true
            }
            state.idle.append(lease.pooled)
            return false
        }
        if close { lease.connection.closeQuietly() }
        signalReturned()
    }

    private func signalReturned() {
        returned.lock()
        returned.signal()
        returned.unlock()
    }

    /// The primary may have moved: idle connections are closed, and the next connection looks for
    /// the primary again, the last known one first.
    func forgetPrimary() {
        let idle = state.withLock { state -> [Pooled] in
            state.generation += 1
            state.open -= state.idle.count
            defer { state.idle = [] }
            return state.idle
        }
        for pooled in idle { pooled.connection.closeQuietly() }
    }

    /// Tries the hosts in order (the last known primary first) and returns a connection to the
    /// first that accepts writes.
    private func connectToPrimary() throws -> PostgresConnection {
        let known = state.withLock { $0.primary }
        var hosts = settings.hosts
        if let known, let index = hosts.firstIndex(of: known) {
            hosts.remove(at: index)
            hosts.insert(known, at: 0)
        }
        var failures: [String] = []
        for host in hosts {
            let connection: PostgresConnection
            do {
                connection = try PostgresConnection.connect(
                    on: eventLoops.next(), configuration: configuration(for: host),
                    id: nextConnectionID.wrappingAdd(1, ordering: .relaxed).newValue, logger: logger
                ).wait()
            } catch {
                failures.append("\(host): \(PostgresErrors.describe(error))")
                continue
            }
            do {
                let rows = try connection.query("SHOW transaction_read_only", logger: logger).wait()
                let readOnly = try rows.rows.first?.decode(String.self) ?? "on"
                if readOnly == "off" {
                    let changed = state.withLock { state -> Bool in
                        defer { state.primary = host }
                        return state.primary != host
                    }
                    if changed {
                        logger.info("connected to the PostgreSQL primary", metadata: ["host": "\(host)"])
                    }
                    return connection
                }
                failures.append("\(host): read-only (a standby)")
            } catch {
                failures.append("\(host): \(PostgresErrors.describe(error))")
            }
            connection.closeQuietly()
        }
        state.withLock { $0.primary = nil }
        throw StoreError.unavailable("no writable PostgreSQL primary: " + failures.joined(separator: "; "))
    }

    private func configuration(for host: PostgresSettings.Host) -> PostgresConnection.Configuration {
        var configuration = PostgresConnection.Configuration(
            host: host.name, port: host.port, username: settings.username, password: settings.password?.value,
            database: settings.database, tls: tlsContext.map { .require($0) } ?? .disable)
        configuration.options.connectTimeout = .milliseconds(Int64(settings.connectTimeout * 1000))
        if settings.tls == .verifyFull { configuration.options.tlsServerName = host.name }
        return configuration
    }
}

/// What PostgreSQL's and the driver's errors mean for the store.
enum PostgresErrors {
    /// SQLSTATE classes and codes that mean "the database cannot take this now", not "this write
    /// is wrong": connection trouble (08), a read-only server (25006), shutting down or starting up
    /// (57P01-57P03), out of resources (53), system errors (58), and a statement timeout (57014).
    private static func isStorageTrouble(_ sqlState: String) -> Bool {
        sqlState.hasPrefix("08") || sqlState.hasPrefix("53") || sqlState.hasPrefix("58")
            || ["25006", "57P01", "57P02", "57P03", "57014", "55P03"].contains(sqlState)
    }

    static func sqlState(_ error: any Error) -> String? {
        if let error = error as? PSQLError { return error.serverInfo?[.sqlState] }
        // Prepared statements (`PreparedQuery`) report the server's errors in the older form.
        if case .server(let message)? = error as? PostgresError { return message.fields[.sqlState] }
        return nil
    }

    /// A prepared statement the server no longer has (26000, a pooler or `DISCARD ALL` dropped
    /// it) or whose plan no longer fits the schema (0A000, "cached plan must not change result
    /// type").
    static func invalidatesPreparedStatement(_ error: any Error) -> Bool {
        guard let state = sqlState(error) else { return false }
        return state == "26000" || state == "0A000"
    }

    /// A transaction that lost a race (serialization failure, deadlock, or a unique key another
    /// instance inserted first): running it again, now that the winner committed, is correct.
    static func isRetryable(_ error: any Error) -> Bool {
        guard let state = sqlState(error) else { return false }
        return state == "40001" || state == "40P01" || state == "23505"
    }

    /// Storage trouble as `StoreError.unavailable`; every other error as it is.
    static func classify(_ error: any Error) -> any Error {
        if error is StoreError { return error }
        if let state = sqlState(error) {
            return isStorageTrouble(state) ? StoreError.unavailable(describe(error)) : error
        }
        if error is PSQLError || error is PostgresError || error is IOError || error is ChannelError
            || error is NIOConnectionError || error is NIOSSLError
        {
            return StoreError.unavailable(describe(error))
        }
        return error
    }

    /// The connection cannot be trusted for another transaction.
    static func breaksConnection(_ error: any Error) -> Bool {
        if let state = sqlState(error) { return isStorageTrouble(state) }
        if case StoreError.unavailable = error { return true }
        // The use cases' own refusals (a conflict, a fenced write) leave the connection as good as it was.
        return error is PSQLError || error is PostgresError || error is ChannelError || error is NIOConnectionError
    }

    /// The server is no longer (or not yet) the writable primary.
    static func primaryMayHaveChanged(_ error: any Error) -> Bool {
        guard let state = sqlState(error) else { return breaksConnection(error) }
        return state == "25006" || state.hasPrefix("57P") || state.hasPrefix("08")
    }

    /// A line for logs and problems: the server's message when there is one.
    static func describe(_ error: any Error) -> String {
        if let error = error as? PSQLError {
            if let message = error.serverInfo?[.message] {
                return "\(message) (SQLSTATE \(error.serverInfo?[.sqlState] ?? "?"))"
            }
            if let underlying = error.underlying { return "\(error.code): \(underlying)" }
            return "\(error.code)"
        }
        if case .server(let message)? = error as? PostgresError, let text = message.fields[.message] {
            return "\(text) (SQLSTATE \(message.fields[.sqlState] ?? "?"))"
        }
        return "\(error)"
    }
}

extension PostgresConnection {
    /// Closes without waiting (the driver fails whatever was still running on it). The connection
    /// is kept alive until the close completes: the driver insists on being closed before it goes.
    func closeQuietly() {
        let closing: EventLoopFuture<Void> = close()
        closing.whenComplete { _ in withExtendedLifetime(self) {} }
    }
}
