import ArgumentParser
import Crypto
import Foundation
import StandbyCore
import StandbyServer
import StandbyStore

/// Opens the configured database for a one-off command (migrating it, as `serve` would).
func openDatabase(_ configuration: StandbyConfiguration) throws -> StandbyDatabase {
    do {
        let database = try StandbyDatabase(settings: configuration.database)
        try database.migrate()
        return database
    } catch let error as StoreError {
        throw CommandFailure("\(configuration.database.path): \(error)")
    }
}

func parseDate(_ text: String, option: String) throws -> Date {
    if let date = Timestamp.parse(text) ?? Timestamp.parse(text + "T00:00:00Z") { return date }
    throw ValidationError("\(option) must be an ISO-8601 date or timestamp, such as 2026-11-01 or 2026-11-01T00:00:00Z")
}

struct Export: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Export the event history as NDJSON or CSV (streamed; constant memory).")

    @OptionGroup var options: ConfigOption
    @Option(help: "Only events at or after this time.") var since: String?
    @Option(help: "Only events before this time.") var until: String?
    @Option(help: "Only these event types (comma-separated).") var type: String?
    @Option(help: "ndjson or csv.") var format = "ndjson"
    @Option(help: "Write here instead of standard output.") var output: String?

    func run() async throws {
        guard let format = ExportFormat(rawValue: format) else { throw ValidationError("--format must be ndjson or csv") }
        let configuration = try options.load()
        let history = EventHistory(database: try openDatabase(configuration))
        var query = EventQuery()
        query.since = try since.map { try parseDate($0, option: "--since") }
        query.until = try until.map { try parseDate($0, option: "--until") }
        query.types = type.map { $0.split(separator: ",").map(String.init) } ?? []
        let handle: FileHandle
        if let output {
            guard FileManager.default.createFile(atPath: output, contents: nil), let file = FileHandle(forWritingAtPath: output)
            else { throw CommandFailure("cannot write \(output)") }
            handle = file
        } else {
            handle = .standardOutput
        }
        let total = try await history.count(query)
        var written = 0
        var lastReport = Date()
        switch format {
        case .ndjson:
            if query.isUnfiltered, let anchor = try await history.latestAnchor() {
                handle.write(Data(EventExport.ndjsonLine(anchor).utf8))
            }
        case .csv:
            handle.write(Data(EventExport.csvHeader.utf8))
        }
        var after: Int64 = 0
        while true {
            let events = try await history.batch(query, afterSeq: after, batchSize: 5000)
            guard let last = events.last else { break }
            var chunk = ""
            chunk.reserveCapacity(events.count * 400)
            for event in events { chunk += format == .ndjson ? EventExport.ndjsonLine(event) : EventExport.csvLine(event) }
            handle.write(Data(chunk.utf8))
            written += events.count
            after = last.seq
            if output != nil, Date().timeIntervalSince(lastReport) >= 1 {
                FileHandle.standardError.write(Data("\rexported \(written) of \(total) events".utf8))
                lastReport = Date()
            }
        }
        if output != nil {
            FileHandle.standardError.write(Data("\rexported \(written) of \(total) events\n".utf8))
            try handle.close()
        }
    }
}

struct Audit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check the hash chain of the event history.", subcommands: [Verify.self])

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Verify an NDJSON export (FILE) or the live database (--config); exit 1 naming the first bad seq.")

        @Argument(help: "An NDJSON export to verify.") var file: String?
        @Option(help: "Verify the database of this configuration instead of a file.") var config: String?
        @Option(help: "Key that signed pruning anchors (defaults to audit.signingKey of --config).") var key: String?

        func run() async throws {
            if let file {
                try verifyFile(file)
            } else {
                var options = ConfigOption()
                options.config = config
                let configuration = try options.load()
                let history = EventHistory(database: try openDatabase(configuration))
                do {
                    let count = try await history.verify(anchorKey: key ?? configuration.audit.signingKey)
                    print("ok: \(count) events verified")
                } catch let failure as AuditVerifier.Failure {
                    throw CommandFailure("tampered: \(failure)")
                }
            }
        }

        private func verifyFile(_ file: String) throws {
            guard let reader = LineReader(path: file) else { throw CommandFailure("cannot read \(file)") }
            var verifier = AuditVerifier(anchorKey: key)
            var lineNumber = 0
            do {
                while let line = reader.next() {
                    lineNumber += 1
                    if line.isEmpty { continue }
                    let (event, anchor) = EventExport.parse(line: line)
                    if let anchor {
                        guard lineNumber == 1 else { throw CommandFailure("line \(lineNumber): an anchor may only be the first line") }
                        try verifier.start(from: anchor)
                    } else if let event {
                        try verifier.check(event)
                    } else {
                        throw CommandFailure("line \(lineNumber): not an event of a Standby export")
                    }
                }
            } catch let failure as AuditVerifier.Failure {
                throw CommandFailure("tampered: \(failure) (line \(lineNumber))")
            }
            print("ok: \(verifier.verified) events verified")
        }
    }
}

/// Reads a file line by line without loading it whole.
final class LineReader {
    private let handle: FileHandle
    private var buffer = Data()
    private var finished = false

    init?(path: String) {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        self.handle = handle
    }

    func next() -> String? {
        while true {
            if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = buffer[buffer.startIndex..<newline]
                buffer.removeSubrange(buffer.startIndex...newline)
                return String(decoding: line, as: UTF8.self)
            }
            if finished {
                guard !buffer.isEmpty else { return nil }
                defer { buffer.removeAll() }
                return String(decoding: buffer, as: UTF8.self)
            }
            let chunk = handle.readData(ofLength: 1 << 20)
            if chunk.isEmpty { finished = true } else { buffer.append(chunk) }
        }
    }
}

struct Prune: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Remove events older than a date, leaving a (signed) anchor so that the rest still verifies.")

    @OptionGroup var options: ConfigOption
    @Option(help: "Remove events before this date.") var before: String

    func run() async throws {
        let cutoff = try parseDate(before, option: "--before")
        let configuration = try options.load()
        let history = EventHistory(database: try openDatabase(configuration))
        let removed = try await history.prune(before: cutoff, signingKey: configuration.audit.signingKey, now: Date())
        print(
            "pruned \(removed) events before \(Timestamp.format(cutoff))"
                + (configuration.audit.signingKey == nil ? " (anchor unsigned: set audit.signingKey to sign it)" : ""))
    }
}

struct Token: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Work with API tokens.", subcommands: [Hash.self])

    struct Hash: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the sha256:<hex> form of a token, for auth.apiTokens[].token (reads stdin without an argument).")

        @Argument(help: "The token. Prefer standard input, so it stays out of shell history.") var token: String?

        func run() async throws {
            let secret = token ?? readLine(strippingNewline: true) ?? ""
            guard !secret.isEmpty else { throw ValidationError("give the token as an argument or on standard input") }
            print("sha256:" + Data(secret.utf8).sha256Hex)
        }
    }
}
