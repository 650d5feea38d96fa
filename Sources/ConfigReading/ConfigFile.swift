import Foundation
import StandbyCore
import StandbyPrimitives
import Yams

/// The configuration problem, with where it is: a key path such as `deployments[0].hubs[1].id`.
public struct ConfigProblem: Sendable, Hashable, CustomStringConvertible {
    public var path: String
    public var reason: String
    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }
    public var description: String { path.isEmpty ? reason : "\(path): \(reason)" }
}

/// Every problem of one configuration file; reading never stops at the first.
public struct ConfigError: Error, Sendable, CustomStringConvertible {
    public var file: String
    public var problems: [ConfigProblem]
    public init(file: String, problems: [ConfigProblem]) {
        self.file = file
        self.problems = problems
    }
    public var description: String {
        "\(file) has \(problems.count) problem\(problems.count == 1 ? "" : "s"):\n"
            + problems.map { "  - \($0)" }.joined(separator: "\n")
    }
}

/// Reading a YAML configuration file, whatever its schema: `${VAR}` (required) and
/// `${VAR:-default}` (optional) resolved from the environment, scalars typed as each field asks,
/// bounded, and every problem collected with its key path. A schema is an extension of
/// `ConfigReader` that walks the document (the server's and the probe's each have theirs).
public enum ConfigFile {
    public static func load<T>(
        file: String, environment: [String: String] = ProcessInfo.processInfo.environment,
        schema: (ConfigReader, ConfigNode) -> T
    ) throws -> T {
        let text: String
        do {
            text = try String(contentsOfFile: file, encoding: .utf8)
        } catch {
            throw ConfigError(
                file: file,
                problems: [ConfigProblem(path: "", reason: "cannot read the file (\(error.localizedDescription))")])
        }
        return try parse(text, file: file, environment: environment, schema: schema)
    }

    public static func parse<T>(
        _ text: String, file: String = "config", environment: [String: String],
        schema: (ConfigReader, ConfigNode) -> T
    ) throws -> T {
        let root: ConfigNode
        do {
            guard let node = try Yams.compose(yaml: text) else {
                throw ConfigError(file: file, problems: [ConfigProblem(path: "", reason: "the file is empty")])
            }
            root = ConfigNode(path: "", value: ConfigValue(node))
        } catch let error as ConfigError {
            throw error
        } catch {
            throw ConfigError(file: file, problems: [ConfigProblem(path: "", reason: "not valid YAML: \(error)")])
        }
        let reader = ConfigReader(environment: environment)
        let value = schema(reader, root)
        guard reader.problems.isEmpty else { throw ConfigError(file: file, problems: reader.problems) }
        return value
    }

    /// `30s`, `5m`, `1h`, `1h30m`, `250ms`, `2d`, or a bare number of seconds.
    public static func parseDuration(_ text: String) -> TimeInterval? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        // `inf`, `nan` and `1e300` are numbers to Double but no duration: refused here, before
        // any of them reaches a conversion to whole nanoseconds and traps.
        guard let total = parseDurationUnbounded(trimmed), total.isFinite, total <= maximumDuration else { return nil }
        return total
    }

    /// Ten years: more than any setting needs, little enough to convert to nanoseconds safely.
    public static let maximumDuration: TimeInterval = 10 * 365 * 86_400

    private static func parseDurationUnbounded(_ trimmed: String) -> TimeInterval? {
        if trimmed.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }), let seconds = Double(trimmed) {
            return seconds
        }
        var total: TimeInterval = 0
        var number = ""
        var unit = ""
        var sawAny = false
        func flush() -> Bool {
            guard let value = Double(number) else { return false }
            let scale: Double
            switch unit {
            case "ms": scale = 0.001
            case "s": scale = 1
            case "m": scale = 60
            case "h": scale = 3600
            case "d": scale = 86_400
            default: return false
            }
            total += value * scale
            number = ""
            unit = ""
            sawAny = true
            return true
        }
        for character in trimmed {
            guard character.isASCII else { return nil }
            if character.isNumber || character == "." {
                if !unit.isEmpty { guard flush() else { return nil } }
                number.append(character)
            } else if character.isLetter {
                guard !number.isEmpty else { return nil }
                unit.append(character)
            } else {
                return nil
            }
        }
        guard !number.isEmpty, flush(), sawAny else { return nil }
        return total
    }
}

/// YAML reduced to what a config needs; scalars stay text until a field says what it wants.
public indirect enum ConfigValue {
    case null
    case scalar(String)
    case mapping([(String, ConfigValue)])
    case sequence([ConfigValue])

    public init(_ node: Node) {
        switch node {
        case .scalar(let scalar):
            if scalar.style == .plain, ["", "~", "null", "Null", "NULL"].contains(scalar.string) {
                self = .null
            } else {
                self = .scalar(scalar.string)
            }
        case .mapping(let mapping):
            self = .mapping(mapping.map { (($0.key.string ?? "\($0.key)"), ConfigValue($0.value)) })
        case .sequence(let sequence):
            self = .sequence(sequence.map(ConfigValue.init))
        @unknown default:
            self = .null
        }
    }
}

public struct ConfigNode {
    public var path: String
    public var value: ConfigValue

    public func child(_ key: String) -> ConfigNode? {
        guard case .mapping(let pairs) = value, let pair = pairs.first(where: { $0.0 == key }) else { return nil }
        if case .null = pair.1 { return nil }
        return ConfigNode(path: path.isEmpty ? key : "\(path).\(key)", value: pair.1)
    }

    public var keys: [String] {
        if case .mapping(let pairs) = value { return pairs.map(\.0) }
        return []
    }

    public var isMapping: Bool {
        if case .mapping = value { return true }
        return false
    }

    public var items: [ConfigNode]? {
        guard case .sequence(let values) = value else { return nil }
        return values.enumerated().map { ConfigNode(path: "\(path)[\($0.offset)]", value: $0.element) }
    }
}

public final class ConfigReader {
    /// Signing and chain keys: HMAC-SHA256 keys should be as long as its output.
    public static let minimumKeyBytes = 32
    /// Bearer and webhook tokens: 16 bytes of a random token are 128 bits, beyond guessing at any
    /// request rate; Azure's webhook URL form and many secret stores make longer tokens awkward.
    public static let minimumTokenBytes = 16

    public private(set) var problems: [ConfigProblem] = []
    public let environment: [String: String]

    public init(environment: [String: String]) {
        self.environment = environment
    }

    public func problem(_ path: String, _ reason: String) {
        problems.append(ConfigProblem(path: path, reason: reason))
    }

    // MARK: Scalars

    /// The scalar at `node` with `${VAR}` references resolved.
    public func text(_ node: ConfigNode) -> String? {
        guard case .scalar(let raw) = node.value else {
            problem(node.path, "expected a single value, found a \(node.isMapping ? "mapping" : "list")")
            return nil
        }
        return substitute(raw, at: node.path)
    }

    public func substitute(_ raw: String, at path: String) -> String? {
        var output = ""
        var rest = Substring(raw)
        var ok = true
        while let start = rest.range(of: "${") {
            output += rest[..<start.lowerBound]
            guard let end = rest[start.upperBound...].firstIndex(of: "}") else {
                problem(path, "unterminated ${ in \"\(raw)\"")
                return nil
            }
            let reference = rest[start.upperBound..<end]
            let name: Substring
            let fallback: Substring?
            if let separator = reference.range(of: ":-") {
                name = reference[..<separator.lowerBound]
                fallback = reference[separator.upperBound...]
            } else {
                name = reference
                fallback = nil
            }
            if let value = environment[String(name)], !(value.isEmpty && fallback != nil) {
                output += value
            } else if let fallback {
                output += fallback
            } else {
                problem(path, "environment variable \(name) is not set")
                ok = false
            }
            rest = rest[rest.index(after: end)...]
        }
        output += rest
        return ok ? output : nil
    }

    public func string(_ parent: ConfigNode, _ key: String, default fallback: String? = nil, required: Bool = false)
        -> String?
    {
        guard let node = parent.child(key) else {
            if required { problem(joined(parent.path, key), "is required") }
            return fallback
        }
        return text(node)
    }

    public func int(_ parent: ConfigNode, _ key: String, default fallback: Int, range: ClosedRange<Int>) -> Int {
        guard let node = parent.child(key), let value = text(node) else { return fallback }
        guard let number = Int(value), range.contains(number) else {
            problem(
                node.path, "expected a whole number from \(range.lowerBound) to \(range.upperBound), found \"\(value)\""
            )
            return fallback
        }
        return number
    }

    public func bool(_ parent: ConfigNode, _ key: String, default fallback: Bool) -> Bool {
        guard let node = parent.child(key), let value = text(node) else { return fallback }
        switch value.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default:
            problem(node.path, "expected true or false, found \"\(value)\"")
            return fallback
        }
    }

    /// A duration within `range` (seconds). Every duration has a finite upper bound: a value that
    /// passes here is one the server can run with.
    public func duration(
        _ parent: ConfigNode, _ key: String, default fallback: TimeInterval, range: ClosedRange<TimeInterval>
    )
        -> TimeInterval
    {
        guard let node = parent.child(key), let value = text(node) else { return fallback }
        guard let seconds = ConfigFile.parseDuration(value) else {
            problem(node.path, "expected a duration such as 30s, 5m or 1h, found \"\(value)\"")
            return fallback
        }
        guard range.contains(seconds) else {
            problem(
                node.path,
                "expected a duration from \(Self.describe(range.lowerBound)) to \(Self.describe(range.upperBound)), found \"\(value)\""
            )
            return fallback
        }
        return seconds
    }

    public static func describe(_ seconds: TimeInterval) -> String {
        if seconds < 1 { return "\(Int((seconds * 1000).rounded()))ms" }
        if seconds.truncatingRemainder(dividingBy: 86_400) == 0 { return "\(Int(seconds / 86_400))d" }
        if seconds.truncatingRemainder(dividingBy: 3600) == 0 { return "\(Int(seconds / 3600))h" }
        if seconds.truncatingRemainder(dividingBy: 60) == 0 { return "\(Int(seconds / 60))m" }
        return "\(Int(seconds))s"
    }

    /// A secret: `${VAR}` from the environment, at least `minimumBytes` long. An empty value (an
    /// optional variable left unset) is `nil`, which disables what the secret would open.
    public func secret(_ node: ConfigNode, minimumBytes: Int, required: Bool = false) -> Secret? {
        guard let value = text(node) else { return nil }
        guard !value.isEmpty else {
            if required { problem(node.path, "must not be empty") }
            return nil
        }
        guard value.utf8.count >= minimumBytes else {
            problem(node.path, "a secret must be at least \(minimumBytes) bytes long, found \(value.utf8.count)")
            return nil
        }
        return Secret(value)
    }

    public func secret(_ parent: ConfigNode, _ key: String, minimumBytes: Int, required: Bool = false) -> Secret? {
        guard let node = parent.child(key) else {
            if required { problem(joined(parent.path, key), "is required") }
            return nil
        }
        return secret(node, minimumBytes: minimumBytes, required: required)
    }

    /// An absolute `https` URL; plain `http` only to a loopback host (the traffic never leaves the
    /// machine, so nothing can read it on the way) or where `allowPlainHTTP` says so.
    public func checkURL(_ url: String, at path: String, allowPlainHTTP: Bool = false) {
        guard let parsed = URL(string: url), let scheme = parsed.scheme?.lowercased(), let host = parsed.host,
            !host.isEmpty
        else {
            problem(path, "expected an absolute https URL, found \"\(url)\"")
            return
        }
        if scheme == "https" || (scheme == "http" && (allowPlainHTTP || Self.isLoopback(host))) { return }
        problem(
            path,
            scheme == "http"
                ? "plain http is refused beyond loopback; use https, or set allowPlainHTTP: true for this receiver"
                : "expected an https URL, found \"\(url)\"")
    }

    /// `localhost`, 127.0.0.0/8 and `::1`.
    static func isLoopback(_ host: String) -> Bool {
        let host = host.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        if host == "localhost" || host == "::1" { return true }
        let octets = host.split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4 && octets[0] == "127" && octets.allSatisfy { UInt8($0) != nil }
    }

    public func choice<T: RawRepresentable & CaseIterable>(_ parent: ConfigNode, _ key: String, default fallback: T?)
        -> T? where T.RawValue == String
    {
        guard let node = parent.child(key), let value = text(node) else {
            if fallback == nil { problem(joined(parent.path, key), "is required") }
            return fallback
        }
        guard let parsed = T(rawValue: value) else {
            let allowed = T.allCases.map(\.rawValue).joined(separator: ", ")
            problem(node.path, "expected one of \(allowed), found \"\(value)\"")
            return fallback
        }
        return parsed
    }

    public func strings(_ parent: ConfigNode, _ key: String) -> [String] {
        guard let node = parent.child(key) else { return [] }
        guard let items = node.items else {
            problem(node.path, "expected a list")
            return []
        }
        return items.compactMap(text)
    }

    /// The mappings of the list at `key` (a problem for anything else).
    public func mappings(_ parent: ConfigNode, _ key: String) -> [ConfigNode] {
        guard let node = parent.child(key) else { return [] }
        guard let items = node.items else {
            problem(node.path, "expected a list")
            return []
        }
        return items.filter { item in
            if !item.isMapping { problem(item.path, "expected a mapping") }
            return item.isMapping
        }
    }

    public func stringOrList(_ parent: ConfigNode, _ key: String) -> [String] {
        guard let node = parent.child(key) else { return [] }
        if node.items != nil { return strings(parent, key).filter { !$0.isEmpty } }
        return text(node).map { [$0] }?.filter { !$0.isEmpty } ?? []
    }

    public func mapping(_ parent: ConfigNode, _ key: String, allowed: Set<String>) -> ConfigNode? {
        guard let node = parent.child(key) else { return nil }
        guard node.isMapping else {
            problem(node.path, "expected a mapping")
            return nil
        }
        checkKeys(node, allowed: allowed)
        return node
    }

    public func checkKeys(_ node: ConfigNode, allowed: Set<String>) {
        for key in node.keys where !allowed.contains(key) {
            problem(
                joined(node.path, key), "unknown key (expected one of: \(allowed.sorted().joined(separator: ", ")))")
        }
    }

    public func joined(_ path: String, _ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

}
