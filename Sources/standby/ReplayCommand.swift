import ArgumentParser
import ConfigReading
import Foundation
import StandbyApp
import StandbyCore
import StandbyPrimitives
import StandbyServer
import StandbyStore

struct Replay: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Re-run the recorded history through a candidate policy and compare its decisions with the record.",
        discussion: """
            Reads the deliveries, reports, operator actions and acknowledgements of the database named \
            in --config (never writes to it) and feeds them, in recorded order, to a control plane with \
            the candidate's deployments and policies on a scratch database. --policy FILE holds \
            `deployments:` (replacing the config's), `policy:` (merged into every deployment's policy) \
            or `policies: {<id>: {...}}`. Without it the live policy is replayed, which reproduces the \
            record. Progress goes to stderr.
            """)

    @OptionGroup var options: ConfigOption
    @Option(help: "Candidate policy file (YAML).") var policy: String?
    @Option(help: "Only this deployment.") var deployment: String?
    @Option(help: "Compare decisions from this time (ISO-8601 date or time).") var since: String?
    @Option(help: "Replay and compare up to this time (default: the end of the history).") var until: String?
    @Option(help: "table or json.") var format = "table"

    func run() async throws {
        guard ["json", "table"].contains(format) else { throw ValidationError("--format must be json or table") }
        let live = try options.load()
        let candidate = try candidateConfiguration(over: live)
        if let deployment, candidate.topology.deployment(deployment) == nil {
            throw ValidationError("no deployment is named \(deployment) in the candidate")
        }
        var settings = ReplaySettings()
        settings.deploymentId = deployment
        settings.since = try since.map { try parseDate($0, option: "--since") }
        settings.until = try until.map { try parseDate($0, option: "--until") }
        let storage: CommandStorage
        do {
            storage = try await CommandStorage.open(live)
        } catch let error as StoreError {
            throw CommandFailure("\(live.storageDescription): \(error)")
        }
        defer { storage.close() }
        let report = try await ReplayRun.run(
            candidate: candidate, history: storage.history, store: storage.store, alerts: storage.alerts,
            settings: settings,
            progress: { read in FileHandle.standardError.write(Data("replay: \(read) events read\n".utf8)) })
        FileHandle.standardError.write(
            Data("replay: \(report.eventsRead) events read, \(report.signalsReplayed) replayed\n".utf8))
        if format == "json" {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes, .prettyPrinted]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
            return
        }
        for deployment in report.deployments {
            print(
                "\(deployment.id): \(deployment.recorded.count) decisions recorded, \(deployment.replayed.count) replayed, "
                    + "\(deployment.differences.count) differences")
            for difference in deployment.differences {
                let move = "\(difference.kind) \(difference.fromHub ?? "-") → \(difference.toHub ?? "-")"
                let when = [
                    difference.recordedAt.map { "recorded \($0)" }, difference.replayedAt.map { "replayed \($0)" },
                ]
                .compactMap { $0 }.joined(separator: ", ")
                print("  \(difference.type.uppercased()) \(move) (\(when)): \(difference.reason)")
            }
        }
    }

    private func candidateConfiguration(over live: StandbyConfiguration) throws -> StandbyConfiguration {
        guard let policy else { return live }
        do {
            return try ConfigLoader.candidate(
                over: live, candidate: try String(contentsOfFile: policy, encoding: .utf8), file: policy)
        } catch let error as ConfigError {
            throw CommandFailure(error.description)
        } catch let error as CocoaError {
            throw CommandFailure("cannot read \(policy): \(error.localizedDescription)")
        }
    }
}
