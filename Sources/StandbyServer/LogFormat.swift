import Foundation
import Logging
import StandbyCore
import StandbyPrimitives
import Synchronization

public enum LogFormat: String, Sendable, CaseIterable {
    case logfmt
    case json
}

public struct LoggingSettings: Sendable, Hashable {
    public var format = LogFormat.logfmt
    public var level = Logger.Level.info
    public init() {}
}

/// One line per log record on standard error, as logfmt or JSON, with the request id and every
/// metadata key. Secrets never reach it: handlers log names and IDs, not tokens or bodies.
public struct StandbyLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    let label: String
    let format: LogFormat
    let clock: @Sendable () -> Date

    public init(label: String, settings: LoggingSettings, clock: @escaping @Sendable () -> Date = { Date() }) {
        self.label = label
        self.format = settings.format
        self.logLevel = settings.level
        self.clock = clock
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    static let output = Mutex(FileHandle.standardError)

    public func log(event: LogEvent) {
        var fields: [(String, String)] = [
            ("ts", Timestamp.format(clock())), ("level", event.level.rawValue), ("logger", label),
            ("msg", event.message.description),
        ]
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        for key in merged.keys.sorted() {
            let name = key == "hb.request.id" ? "request_id" : key
            fields.append((name, LogText.truncated("\(merged[key]!)", limit: LogText.fieldLimit)))
        }
        let line = Self.render(fields, as: format) + "\n"
        Self.output.withLock { $0.write(Data(line.utf8)) }
    }

    static func render(_ fields: [(String, String)], as format: LogFormat) -> String {
        switch format {
        case .json:
            var object: [String: JSONValue] = [:]
            for (key, value) in fields { object[key] = .string(value) }
            return JSONValue.object(object).canonicalString()
        case .logfmt:
            return fields.map { key, value in
                let needsQuotes =
                    value.isEmpty
                    || value.unicodeScalars.contains {
                        $0 == " " || $0 == "=" || $0 == "\"" || $0 == "\\" || $0.value < 0x20 || $0.value == 0x7F
                    }
                guard needsQuotes else { return "\(key)=\(value)" }
                return "\(key)=\"\(escapedForLogfmt(value))\""
            }.joined(separator: " ")
        }
    }
}

/// Inside a quoted logfmt value: backslash and quote escaped, and every control character written
/// as an escape, so that a value (a header, a payload field) can never start a forged log line or
/// move the terminal's cursor.
func escapedForLogfmt(_ value: String) -> String {
    var escaped = ""
    escaped.reserveCapacity(value.utf8.count + 8)
    for scalar in value.unicodeScalars {
        switch scalar {
        case "\\": escaped += "\\\\"
        case "\"": escaped += "\\\""
        case "\n": escaped += "\\n"
        case "\r": escaped += "\\r"
        case "\t": escaped += "\\t"
        case _ where scalar.value < 0x20 || scalar.value == 0x7F:
            escaped +=
                "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count)
                + String(scalar.value, radix: 16)
        default: escaped.unicodeScalars.append(scalar)
        }
    }
    return escaped
}

/// Bounds for what a log line carries: a value that held a whole payload or view would make lines
/// of tens of kilobytes that log shippers cut or drop.
public enum LogText {
    public static let fieldLimit = 2000
    public static let errorLimit = 500

    public static func truncated(_ text: String, limit: Int = errorLimit) -> String {
        guard text.utf8.count > limit else { return text }
        var prefix = Substring(text.prefix(limit))
        while prefix.utf8.count > limit { prefix = prefix.dropLast() }
        return prefix + "… (\(text.utf8.count) bytes)"
    }
}
