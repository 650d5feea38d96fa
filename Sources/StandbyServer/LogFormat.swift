import Foundation
import Logging
import StandbyCore
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
            fields.append((name, "\(merged[key]!)"))
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
                let needsQuotes = value.isEmpty || value.contains { $0 == " " || $0 == "=" || $0 == "\"" || $0 == "\n" }
                guard needsQuotes else { return "\(key)=\(value)" }
                let escaped = value.replacingOccurrences(of: "\\", with: "\\\\")
                    .replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n")
                return "\(key)=\"\(escaped)\""
            }.joined(separator: " ")
        }
    }
}
