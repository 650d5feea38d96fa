import Foundation
import StandbyPrimitives

/// Where the shared PostgreSQL database is: `database.url`, a libpq-style URL with a host list,
/// `postgres://user:${STANDBY_DB_PASSWORD}@host1:5432,host2:5432/standby?sslmode=verify-full`.
public struct PostgresSettings: Sendable, Hashable {
    public struct Host: Sendable, Hashable, CustomStringConvertible {
        public var name: String
        public var port: Int
        public init(name: String, port: Int = 5432) {
            self.name = name
            self.port = port
        }
        public var description: String { "\(name):\(port)" }
    }

    /// libpq's `sslmode` values Standby supports.
    public enum TLSMode: String, Sendable, Hashable, CaseIterable {
        /// No TLS (loopback, a private network, tests).
        case disable
        /// TLS without checking the server's certificate.
        case require
        /// TLS with the certificate checked against the CA (`sslrootcert`, or the system's) and
        /// the host name.
        case verifyFull = "verify-full"
    }

    /// Tried in order: the first that is a writable primary is used, as libpq's
    /// `target_session_attrs=read-write` does.
    public var hosts: [Host]
    public var username: String
    /// From the environment (`${STANDBY_DB_PASSWORD}` in the URL), never written in the file.
    public var password: Secret?
    public var database: String
    public var tls: TLSMode
    /// The CA certificate (PEM) for `verify-full`; the system's trust store when unset.
    public var caFile: String?
    /// Connections this instance opens at most.
    public var poolSize: Int
    public var connectTimeout: TimeInterval

    public init(
        hosts: [Host], username: String, password: Secret? = nil, database: String, tls: TLSMode = .disable,
        caFile: String? = nil, poolSize: Int = 8, connectTimeout: TimeInterval = 5
    ) {
        self.hosts = hosts
        self.username = username
        self.password = password
        self.database = database
        self.tls = tls
        self.caFile = caFile
        self.poolSize = poolSize
        self.connectTimeout = connectTimeout
    }

    /// The URL without its password, for logs and `/v1/cluster`.
    public var redactedURL: String {
        "postgres://\(username)@\(hosts.map(\.description).joined(separator: ","))/\(database)?sslmode=\(tls.rawValue)"
    }

    /// Whether `url` names PostgreSQL (rather than a SQLite path).
    public static func isPostgresURL(_ url: String) -> Bool {
        url.hasPrefix("postgres://") || url.hasPrefix("postgresql://")
    }

    /// Reads a `postgres://` URL. Hosts are comma-separated, each with an optional port; the query
    /// takes `sslmode` (`disable`, `require`, `verify-full`), `sslrootcert` and `connect_timeout`.
    public static func parse(url: String) throws(PostgresURLError) -> PostgresSettings {
        guard let schemeEnd = url.range(of: "://"), isPostgresURL(url) else {
            throw PostgresURLError("expected postgres://user:password@host[:port][,host[:port]...]/database")
        }
        var rest = String(url[schemeEnd.upperBound...])
        var query = ""
        if let mark = rest.firstIndex(of: "?") {
            query = String(rest[rest.index(after: mark)...])
            rest = String(rest[..<mark])
        }
        guard let at = rest.lastIndex(of: "@") else {
            throw PostgresURLError("names no user (postgres://user@host/database)")
        }
        let userInfo = String(rest[..<at])
        let afterUser = rest[rest.index(after: at)...]
        guard let slash = afterUser.firstIndex(of: "/") else {
            throw PostgresURLError("names no database (postgres://user@host/database)")
        }
        let hostList = afterUser[..<slash]
        let database = String(afterUser[afterUser.index(after: slash)...]).removingPercentEncoding ?? ""
        guard !database.isEmpty else { throw PostgresURLError("names no database") }
        let userParts = userInfo.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        let username = String(userParts[0]).removingPercentEncoding ?? ""
        guard !username.isEmpty else { throw PostgresURLError("names no user") }
        let password = userParts.count > 1 ? String(userParts[1]).removingPercentEncoding ?? "" : ""
        var hosts: [Host] = []
        for entry in hostList.split(separator: ",", omittingEmptySubsequences: false) {
            hosts.append(try host(String(entry)))
        }
        guard !hosts.isEmpty else { throw PostgresURLError("names no host") }
        var settings = PostgresSettings(
            hosts: hosts, username: username, password: password.isEmpty ? nil : Secret(password), database: database)
        for pair in query.split(separator: "&") where !pair.isEmpty {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = String(parts[0])
            let value = parts.count > 1 ? String(parts[1]).removingPercentEncoding ?? "" : ""
            switch key {
            case "sslmode":
                guard let mode = TLSMode(rawValue: value) else {
                    throw PostgresURLError(
                        "sslmode \"\(value)\" is not supported; use one of "
                            + TLSMode.allCases.map(\.rawValue).joined(separator: ", "))
                }
                settings.tls = mode
            case "sslrootcert":
                settings.caFile = value
            case "connect_timeout":
                guard let seconds = Int(value), (1...300).contains(seconds) else {
                    throw PostgresURLError("connect_timeout must be whole seconds between 1 and 300")
                }
                settings.connectTimeout = TimeInterval(seconds)
            case "pool_size":
                guard let size = Int(value), (1...100).contains(size) else {
                    throw PostgresURLError("pool_size must be between 1 and 100")
                }
                settings.poolSize = size
            default:
                throw PostgresURLError(
                    "unknown parameter \"\(key)\" (known: sslmode, sslrootcert, connect_timeout, pool_size)")
            }
        }
        return settings
    }

    private static func host(_ entry: String) throws(PostgresURLError) -> Host {
        var name = entry
        var port = 5432
        if entry.hasPrefix("[") {
            // An IPv6 literal: [::1]:5432.
            guard let close = entry.firstIndex(of: "]") else { throw PostgresURLError("bad host \"\(entry)\"") }
            name = String(entry[entry.index(after: entry.startIndex)..<close])
            let tail = entry[entry.index(after: close)...]
            if tail.hasPrefix(":") {
                guard let parsed = Int(tail.dropFirst()), (1...65535).contains(parsed) else {
                    throw PostgresURLError("bad port in \"\(entry)\"")
                }
                port = parsed
            }
        } else if let colon = entry.lastIndex(of: ":") {
            name = String(entry[..<colon])
            guard let parsed = Int(entry[entry.index(after: colon)...]), (1...65535).contains(parsed) else {
                throw PostgresURLError("bad port in \"\(entry)\"")
            }
            port = parsed
        }
        guard !name.isEmpty else { throw PostgresURLError("an empty host in the host list") }
        return Host(name: name, port: port)
    }
}

public struct PostgresURLError: Error, Sendable, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
