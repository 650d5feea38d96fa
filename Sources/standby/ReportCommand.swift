import ArgumentParser
import Foundation
import StandbyApp
import StandbyCore
import StandbyPrimitives
import StandbyServer

struct Report: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Reports computed from the recorded history.", subcommands: [Availability.self])

    struct Availability: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Availability per deployment against its pattern's target, from the recorded history.",
            discussion: """
                Down means no serving hub was up. Maintenance windows and drills do not count (see the \
                README, "Availability"). Reads the database of --config; writes nothing.
                """)

        @OptionGroup var options: ConfigOption
        @Option(help: "Start of the period (ISO-8601 date or time).") var since: String
        @Option(help: "End of the period (default: now).") var until: String?
        @Option(help: "Only this deployment (default: all).") var deployment: String?
        @Option(help: "json or table.") var format = "table"

        func run() async throws {
            guard ["json", "table"].contains(format) else { throw ValidationError("--format must be json or table") }
            let configuration = try options.load()
            let start = try parseDate(since, option: "--since")
            let end = try until.map { try parseDate($0, option: "--until") } ?? Date()
            guard start < end else { throw ValidationError("--since must be before --until") }
            var deployments = configuration.topology.deployments
            if let deployment {
                deployments = deployments.filter { $0.id == deployment }
                guard !deployments.isEmpty else { throw ValidationError("no deployment is named \(deployment)") }
            }
            let reports = try await withHistory(configuration) { history in
                var reports: [AvailabilityReport] = []
                for definition in deployments {
                    reports.append(
                        try await AvailabilityReport.build(definition, history: history, since: start, until: end))
                }
                return reports
            }
            if format == "json" {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes, .prettyPrinted]
                print(String(decoding: try encoder.encode(["deployments": reports]), as: UTF8.self))
                return
            }
            for report in reports { print(Self.table(report)) }
        }

        static func whole(_ seconds: Double) -> String { String(Int(seconds.rounded())) }

        static func percent(_ fraction: Double) -> String { String(format: "%.4f%%", fraction * 100) }

        static func seconds(_ durations: AvailabilityReport.Durations) -> String {
            guard let mean = durations.meanSeconds, let max = durations.maxSeconds else { return "—" }
            return String(format: "mean %.0fs, max %.0fs (%d)", mean, max, durations.count)
        }

        static func table(_ report: AvailabilityReport) -> String {
            var lines = [
                "\(report.deployment) (\(report.pattern)) \(report.since) → \(report.until)",
                "  availability  \(percent(report.availability))  target \(percent(report.target))  "
                    + (report.met ? "met" : "MISSED"),
                String(format: "  downtime      %.0fs", report.downtimeSeconds),
                "  failovers     \(report.failovers)   failbacks \(report.failbacks)",
                "  detection     \(seconds(report.detection))  (first failure → decision)",
                "  recovery      \(seconds(report.recovery))  (decision → commands acknowledged)",
            ]
            for hub in report.hubs { lines.append("  hub \(hub.hub) down \(whole(hub.downSeconds))s") }
            for period in report.downPeriods {
                lines.append("  DOWN \(period.from) → \(period.to) (\(whole(period.seconds))s): \(period.reason)")
            }
            for period in report.excludedPeriods {
                lines.append(
                    "  not counted \(period.from) → \(period.to) (\(whole(period.seconds))s): \(period.reason)")
            }
            return lines.joined(separator: "\n")
        }
    }
}
