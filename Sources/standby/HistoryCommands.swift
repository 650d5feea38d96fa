import ArgumentParser
import Crypto
import Foundation
import StandbyApp
import StandbyCore
import StandbyPrimitives
import StandbyServer
import StandbyStore

/// Runs `body` on the configured store's history (migrated first, as `serve` would), then closes it.
func withHistory<T>(_ configuration: StandbyConfiguration, _ body: (any HistoryStore) async throws -> T)
    async throws -> T
{
    let storage: CommandStorage
    do {
        storage = try await CommandStorage.open(configuration)
    } catch let error as StoreError {
        throw CommandFailure("\(configuration.storageDescription): \(error)")
    }
    defer { storage.close() }
    return try await body(storage.history)
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
        guard ExportFormat(rawValue: format) != nil else {
            throw ValidationError("--format must be ndjson or csv")
        }
        let configuration = try options.load()
        try await withHistory(configuration) { history in try await export(history) }
    }

    private func export(_ history: any HistoryStore) async throws {
        guard let format = ExportFormat(rawValue: format) else {
            throw ValidationError("--format must be ndjson or csv")
        }
        var query = EventQuery()
        query.since = try since.map { try parseDate($0, option: "--since") }
        query.until = try until.map { try parseDate($0, option: "--until") }
        query.types = type.map { $0.split(separator: ",").map(String.init) } ?? []
        let handle: FileHandle
        if let output {
            guard FileManager.default.createFile(atPath: output, contents: nil),
                let file = FileHandle(forWritingAtPath: output)
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
            for event in events {
                chunk += format == .ndjson ? EventExport.ndjsonLine(event) : EventExport.csvLine(event)
            }
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
        abstract: "Check the hash chain of the event history, and take signed checkpoints of its head.",
        subcommands: [Verify.self, Checkpoint.self])

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Verify an NDJSON export (FILE) or the live database (--config); exit 1 naming the first bad seq.",
            discussion: """
                The chain key (audit.chainKey) and the signing key (audit.signingKey) come from --config, for a \
                file too. With a checkpoint (from `standby audit checkpoint` or the serving process's log), \
                verification also proves that the history still reaches the checkpoint's event unchanged: \
                events removed from the end are found.
                """)

        @Argument(help: "An NDJSON export to verify.") var file: String?
        @Option(help: "The configuration whose keys (and, without FILE, whose database) to verify with.")
        var config: String?
        @Option(help: "Key that signed pruning anchors and checkpoints (defaults to the keys of --config).")
        var key: String?
        @Option(help: "A checkpoint file (one JSON line) the history must still reach.") var checkpoint: String?

        func run() async throws {
            var configuration: StandbyConfiguration?
            if config != nil || ProcessInfo.processInfo.environment["STANDBY_CONFIG"] != nil || file == nil {
                var options = ConfigOption()
                options.config = config
                configuration = try options.load()
            }
            let checkpoint = try checkpoint.map { path -> AuditCheckpoint in
                guard let text = try? String(contentsOfFile: path, encoding: .utf8),
                    let checkpoint = AuditCheckpoint(jsonLine: text.trimmingCharacters(in: .whitespacesAndNewlines))
                else {
                    throw CommandFailure("\(path) is not a checkpoint ({\"seq\", \"hash\", \"at\", \"signature\"})")
                }
                return checkpoint
            }
            let anchorKey = key.map { Secret($0) } ?? configuration?.audit.anchorKey
            if let checkpoint, checkpoint.signature != nil, anchorKey == nil {
                throw CommandFailure(
                    "the checkpoint is signed: give --config (audit.chainKey or audit.signingKey) to check it")
            }
            var verifier = AuditVerifier(
                chainKey: configuration?.audit.chainKey, anchorKey: anchorKey, checkpoint: checkpoint)
            do {
                if let file {
                    verifier = try verifyFile(file, verifier)
                } else if let configuration {
                    verifier = try await withHistory(configuration) { [verifier] in try await $0.verify(verifier) }
                }
            } catch let failure as AuditVerifier.Failure {
                throw CommandFailure(failure.needsKey ? "cannot verify: \(failure)" : "tampered: \(failure)")
            }
            if anchorKey == nil, file != nil {
                print("note: no key given, so pruning anchors and checkpoints were not checked for a signature")
            }
            print("ok: \(verifier.summary)")
        }

        private func verifyFile(_ file: String, _ start: AuditVerifier) throws -> AuditVerifier {
            guard let reader = LineReader(path: file) else { throw CommandFailure("cannot read \(file)") }
            var verifier = start
            try verifier.checkCheckpointSignature()
            var lineNumber = 0
            do {
                while let line = reader.next() {
                    lineNumber += 1
                    if line.isEmpty { continue }
                    let (event, anchor) = EventExport.parse(line: line)
                    if let anchor {
                        guard lineNumber == 1 else {
                            throw CommandFailure("line \(lineNumber): an anchor may only be the first line")
                        }
                        try verifier.start(from: anchor)
                    } else if let event {
                        try verifier.check(event)
                    } else {
                        throw CommandFailure("line \(lineNumber): not an event of a Standby export")
                    }
                }
                try verifier.finish()
            } catch let failure as AuditVerifier.Failure {
                throw CommandFailure(
                    (failure.needsKey ? "cannot verify: " : "tampered: ") + "\(failure) (line \(lineNumber))")
            }
            return verifier
        }
    }

    struct Checkpoint: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a signed checkpoint of the history's head ({seq, hash, at, signature}) to keep elsewhere.")

        @OptionGroup var options: ConfigOption

        func run() async throws {
            let configuration = try options.load()
            guard let key = configuration.audit.anchorKey else {
                throw CommandFailure("set audit.chainKey (or audit.signingKey) to sign checkpoints")
            }
            let checkpoint = try await withHistory(configuration) { try await $0.checkpoint(key: key, now: Date()) }
            print(checkpoint.jsonLine)
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
        abstract:
            "Remove events and raw signals older than a date, leaving a (signed) anchor so that the rest still verifies.",
        discussion: """
            Events before --before go, replaced by an anchor (signed with audit.signingKey, else \
            audit.chainKey) from which the rest of the chain still verifies, and a history.pruned event. \
            The raw signals received before the same date go in the same transaction: webhook deliveries \
            with their bodies, health reports and readiness reports. Alerts, commands, failover events \
            and the trackers' state stay.
            """)

    @OptionGroup var options: ConfigOption
    @Option(help: "Remove events and raw signals before this date.") var before: String

    func run() async throws {
        let cutoff = try parseDate(before, option: "--before")
        let configuration = try options.load()
        let removed = try await withHistory(configuration) { history in
            do {
                try await history.prepareChain(now: Date())
            } catch let error as StoreError {
                throw CommandFailure("\(configuration.storageDescription): \(error)")
            }
            return try await history.prune(before: cutoff, signingKey: configuration.audit.anchorKey, now: Date())
        }
        print(
            "pruned \(removed.description) before \(Timestamp.format(cutoff))"
                + (configuration.audit.anchorKey == nil
                    ? " (anchor unsigned: set audit.chainKey or audit.signingKey to sign it)" : ""))
    }
}

struct Token: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Work with API tokens.", subcommands: [Hash.self])

    struct Hash: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Print the sha256:<hex> form of a token, for auth.apiTokens[].token (reads stdin without an argument).")

        @Argument(help: "The token. Prefer standard input, so it stays out of shell history.") var token: String?

        func run() async throws {
            let secret = token ?? readLine(strippingNewline: true) ?? ""
            guard !secret.isEmpty else { throw ValidationError("give the token as an argument or on standard input") }
            print("sha256:" + Data(secret.utf8).sha256Hex)
        }
    }
}
