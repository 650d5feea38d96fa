import ConfigReading
import Foundation
import StandbyCore
import StandbyPrimitives

/// What one probing location checks and where it reports: `standby probe --config FILE`.
public struct ProbeConfiguration: Sendable, Hashable {
    /// The reports' `source`, one per probing location (`probe-westeurope`).
    public var source = ""
    public var standby = StandbyEndpoint()
    /// Where `/metrics` and `/healthz` of the probe itself are served; `nil` serves nothing.
    public var listen: (host: String, port: Int)? = ("127.0.0.1", 9465)
    public var targets: [ProbeTarget] = []

    public init() {}

    public static func == (lhs: ProbeConfiguration, rhs: ProbeConfiguration) -> Bool {
        lhs.source == rhs.source && lhs.standby == rhs.standby && lhs.listen?.host == rhs.listen?.host
            && lhs.listen?.port == rhs.listen?.port && lhs.targets == rhs.targets
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(source)
        hasher.combine(targets)
    }
}

/// The Standby instances the reports go to (several, for a highly available setup) and how.
public struct StandbyEndpoint: Sendable, Hashable {
    public var urls: [String] = []
    /// A reporter token of those instances.
    public var token = Secret("")
    public var caFile: String?
    /// Each delivery attempt's bound.
    public var timeout: TimeInterval = 5
    public var batchSize = 100
    /// How often buffered reports are sent when nothing else wakes the sender.
    public var flushInterval: TimeInterval = 1
    /// Reports kept while no instance answers; past it the oldest are dropped (and counted).
    public var bufferSize = 10_000

    public init() {}
}

/// What a probe checks of one hub: an HTTP(S) request or a plain TCP connect.
public struct ProbeTarget: Sendable, Hashable {
    public enum Check: Sendable, Hashable {
        case http(url: String, method: Method, expectedStatus: [StatusRange], bodyContains: String?)
        case tcp(host: String, port: Int)
    }

    public enum Method: String, Sendable, Hashable, CaseIterable {
        case GET
        case HEAD
    }

    /// `200-299`, or one code.
    public struct StatusRange: Sendable, Hashable, CustomStringConvertible {
        public var lower: Int
        public var upper: Int
        public init(_ lower: Int, _ upper: Int) {
            self.lower = lower
            self.upper = upper
        }
        public func contains(_ code: Int) -> Bool { (lower...upper).contains(code) }
        public var description: String { lower == upper ? "\(lower)" : "\(lower)-\(upper)" }

        /// `200-299`, `204`, or `2xx`.
        public init?(parsing text: String) {
            let trimmed = text.trimmingCharacters(in: .whitespaces).lowercased()
            if trimmed.count == 3, trimmed.hasSuffix("xx"), let hundred = Int(trimmed.prefix(1)),
                (1...5).contains(hundred)
            {
                self.init(hundred * 100, hundred * 100 + 99)
                return
            }
            let parts = trimmed.split(separator: "-", omittingEmptySubsequences: false)
            guard (1...2).contains(parts.count), let lower = Int(parts[0]), let upper = Int(parts.last!),
                (100...599).contains(lower), (100...599).contains(upper), lower <= upper
            else { return nil }
            self.init(lower, upper)
        }
    }

    public struct Header: Sendable, Hashable {
        public var name: String
        public var value: String
        public init(name: String, value: String) {
            self.name = name
            self.value = value
        }
    }

    public var hub: String
    public var check: Check
    public var headers: [Header]
    public var timeout: TimeInterval
    public var interval: TimeInterval
    public var followRedirects: Bool
    /// PEM file of the CA that signs the target's certificate; the system trust store otherwise.
    public var caFile: String?

    public init(
        hub: String, check: Check, headers: [Header] = [], timeout: TimeInterval = 5, interval: TimeInterval = 10,
        followRedirects: Bool = false, caFile: String? = nil
    ) {
        self.hub = hub
        self.check = check
        self.headers = headers
        self.timeout = timeout
        self.interval = interval
        self.followRedirects = followRedirects
        self.caFile = caFile
    }

    /// How the target is named in metrics and tables: its URL, or `tcp://host:port`.
    public var name: String {
        switch check {
        case .http(let url, _, _, _): return url
        case .tcp(let host, let port): return "tcp://\(host):\(port)"
        }
    }
}

/// Reads a probe's YAML file with the same rules as the server's (environment references, bounded
/// values, every problem with its key path).
public enum ProbeConfigLoader {
    public static func load(file: String, environment: [String: String] = ProcessInfo.processInfo.environment)
        throws -> ProbeConfiguration
    {
        try ConfigFile.load(file: file, environment: environment) { reader, root in reader.readProbe(root) }
    }

    public static func parse(_ text: String, environment: [String: String]) throws -> ProbeConfiguration {
        try ConfigFile.parse(text, file: "probe config", environment: environment) { reader, root in
            reader.readProbe(root)
        }
    }
}

extension ConfigReader {
    public func readProbe(_ root: ConfigNode) -> ProbeConfiguration {
        var configuration = ProbeConfiguration()
        guard root.isMapping else {
            problem("", "the top level must be a mapping")
            return configuration
        }
        checkKeys(root, allowed: ["source", "standby", "listen", "defaults", "targets", "logging"])
        configuration.source = string(root, "source", required: true) ?? ""
        if !configuration.source.isEmpty, configuration.source.count > 200 {
            problem("source", "must be at most 200 characters")
        }
        if let node = mapping(
            root, "standby",
            allowed: [
                "urls", "token", "allowPlainHTTP", "caFile", "timeout", "batchSize", "flushInterval", "bufferSize",
            ])
        {
            var endpoint = StandbyEndpoint()
            let allowPlainHTTP = bool(node, "allowPlainHTTP", default: false)
            endpoint.urls = strings(node, "urls").map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
            if endpoint.urls.isEmpty { problem(joined(node.path, "urls"), "at least one Standby URL is required") }
            if let urls = node.child("urls")?.items {
                for (item, url) in zip(urls, endpoint.urls) {
                    checkURL(url, at: item.path, allowPlainHTTP: allowPlainHTTP)
                }
            }
            endpoint.token = secret(node, "token", minimumBytes: Self.minimumTokenBytes, required: true) ?? Secret("")
            endpoint.caFile = string(node, "caFile")
            endpoint.timeout = duration(node, "timeout", default: endpoint.timeout, range: 0.1...60)
            endpoint.batchSize = int(node, "batchSize", default: endpoint.batchSize, range: 1...1000)
            endpoint.flushInterval = duration(node, "flushInterval", default: endpoint.flushInterval, range: 0.05...60)
            endpoint.bufferSize = int(node, "bufferSize", default: endpoint.bufferSize, range: 1...1_000_000)
            configuration.standby = endpoint
        } else {
            problem("standby", "is required (urls and token)")
        }
        if let node = root.child("listen") {
            if case .scalar(let value) = node.value, ["off", "false", "none"].contains(value.lowercased()) {
                configuration.listen = nil
            } else if mapping(root, "listen", allowed: ["host", "port"]) != nil, let defaults = configuration.listen {
                configuration.listen = (
                    string(node, "host") ?? defaults.host, int(node, "port", default: defaults.port, range: 0...65535)
                )
            }
        }
        let builtIn = ProbeTarget(hub: "", check: .tcp(host: "", port: 0))
        var defaultInterval = builtIn.interval
        var defaultTimeout = builtIn.timeout
        if let defaults = mapping(root, "defaults", allowed: ["interval", "timeout"]) {
            defaultInterval = duration(defaults, "interval", default: defaultInterval, range: 0.1...3600)
            defaultTimeout = duration(defaults, "timeout", default: defaultTimeout, range: 0.1...60)
        }
        guard let list = root.child("targets"), let items = list.items, !items.isEmpty else {
            problem("targets", "at least one target is required")
            return configuration
        }
        configuration.targets = items.compactMap { readTarget($0, interval: defaultInterval, timeout: defaultTimeout) }
        return configuration
    }

    private func readTarget(
        _ item: ConfigNode, interval defaultInterval: TimeInterval, timeout defaultTimeout: TimeInterval
    )
        -> ProbeTarget?
    {
        guard item.isMapping else {
            problem(item.path, "expected a mapping with hub and url (or tcp)")
            return nil
        }
        checkKeys(
            item,
            allowed: [
                "hub", "url", "tcp", "method", "expectedStatus", "bodyContains", "headers", "timeout", "interval",
                "followRedirects", "caFile",
            ])
        let hub = string(item, "hub", required: true) ?? ""
        let timeout = duration(item, "timeout", default: defaultTimeout, range: 0.1...60)
        let interval = duration(item, "interval", default: defaultInterval, range: 0.1...3600)
        if timeout > interval, item.child("timeout") != nil || item.child("interval") != nil {
            problem(joined(item.path, "timeout"), "must not be longer than the interval (checks never overlap)")
        }
        let check: ProbeTarget.Check
        switch (item.child("url"), item.child("tcp")) {
        case (let urlNode?, nil):
            let url = text(urlNode) ?? ""
            if let parsed = URL(string: url), ["http", "https"].contains(parsed.scheme?.lowercased() ?? ""),
                parsed.host?.isEmpty == false
            {
            } else {
                problem(urlNode.path, "expected an http or https URL, found \"\(url)\"")
            }
            let method = choice(item, "method", default: ProbeTarget.Method.GET) ?? .GET
            var ranges: [ProbeTarget.StatusRange] = []
            if let node = item.child("expectedStatus") {
                for entry in node.items ?? [node] {
                    guard let text = text(entry) else { continue }
                    if let range = ProbeTarget.StatusRange(parsing: text) {
                        ranges.append(range)
                    } else {
                        problem(entry.path, "expected a status such as 200, 200-299 or 2xx, found \"\(text)\"")
                    }
                }
            }
            let bodyContains = string(item, "bodyContains")
            if bodyContains != nil, method == .HEAD {
                problem(joined(item.path, "bodyContains"), "a HEAD request has no body to search")
            }
            check = .http(
                url: url, method: method, expectedStatus: ranges.isEmpty ? [.init(200, 299)] : ranges,
                bodyContains: bodyContains)
        case (nil, let tcpNode?):
            let address = text(tcpNode) ?? ""
            guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]),
                (1...65535).contains(port), colon != address.startIndex
            else {
                problem(tcpNode.path, "expected host:port, found \"\(address)\"")
                return nil
            }
            for key in ["method", "expectedStatus", "bodyContains", "headers", "followRedirects", "caFile"]
            where item.child(key) != nil {
                problem(joined(item.path, key), "applies to url targets, not tcp ones")
            }
            var host = String(address[..<colon])
            if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            check = .tcp(host: host, port: port)
        case (nil, nil):
            problem(item.path, "give url (an HTTP check) or tcp (host:port)")
            return nil
        case (_?, _?):
            problem(item.path, "give url or tcp, not both")
            return nil
        }
        var headers: [ProbeTarget.Header] = []
        if let node = item.child("headers") {
            if case .mapping(let pairs) = node.value {
                for (name, _) in pairs {
                    guard let child = node.child(name), let value = text(child) else { continue }
                    headers.append(ProbeTarget.Header(name: name, value: value))
                }
            } else {
                problem(node.path, "expected a mapping of header names to values")
            }
        }
        guard !hub.isEmpty else { return nil }
        return ProbeTarget(
            hub: hub, check: check, headers: headers, timeout: timeout, interval: interval,
            followRedirects: bool(item, "followRedirects", default: false), caFile: string(item, "caFile"))
    }
}
