import ArgumentParser
import ConfigReading
import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import StandbyCore
import StandbyPrimitives
import StandbyProbe
import StandbyServer
import UnixSignals

/// Reads a probe configuration and its `logging` section; problems as `standby config check` prints them.
func loadProbeConfiguration(_ file: String) throws -> (ProbeConfiguration, LoggingSettings) {
    do {
        return try ConfigFile.load(file: file) { reader, root in (reader.readProbe(root), reader.readLogging(root)) }
    } catch let error as ConfigError {
        throw CommandFailure(error.description)
    }
}

struct Probe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check the hubs' endpoints from this location and report to Standby (a long-running agent).",
        discussion: """
            Every target is checked on its interval; each check becomes a health report with this probe's \\
            own observedAt, sent in batches to the first Standby URL that takes it. While none answers, \\
            reports are buffered (bounded; the oldest dropped first) and delivered late, in observedAt order. \\
            --once runs every check once, prints a table and exits 1 if any failed, sending nothing.
            """)

    @Option(help: "The probe's configuration file (YAML).") var config: String
    @Flag(help: "Run every check once, print a table, report nothing.") var once = false

    func run() async throws {
        let (configuration, logging) = try loadProbeConfiguration(config)
        if once {
            try await checkOnce(configuration)
            return
        }
        LoggingSystem.bootstrap { StandbyLogHandler(label: $0, settings: logging) }
        let logger = Logger(label: "standby.probe")
        let agent = ProbeAgent(configuration: configuration, metrics: ProbeMetrics(), logger: logger)
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: agent)]
        if let listen = configuration.listen {
            let application = Application(
                router: agent.router(),
                configuration: .init(address: .hostname(listen.host, port: listen.port), serverName: "standby-probe"),
                onServerRunning: { channel in
                    logger.info(
                        "probe metrics are listening",
                        metadata: ["address": .string("\(channel.localAddress.map { "\($0)" } ?? "?")")])
                },
                logger: logger)
            services.append(.init(service: application))
        }
        var group = ServiceGroupConfiguration(
            services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        group.maximumGracefulShutdownDuration = .seconds(10)
        try await ServiceGroup(configuration: group).run()
    }

    private func checkOnce(_ configuration: ProbeConfiguration) async throws {
        let checkers = try configuration.targets.map { try TargetChecker(target: $0) }
        let results = await withTaskGroup(of: (Int, CheckResult).self) { group in
            for (index, checker) in checkers.enumerated() { group.addTask { (index, await checker.run()) } }
            var results: [(Int, CheckResult)] = []
            for await result in group { results.append(result) }
            return results.sorted { $0.0 < $1.0 }.map(\.1)
        }
        for checker in checkers { await checker.shutdown() }
        let rows = results.map { result in
            [
                result.hub, result.target, result.success ? "success" : "FAILURE",
                result.statusCode.map(String.init) ?? "-", String(format: "%.0f ms", result.latencyMs), result.detail,
            ]
        }
        print(textTable(["HUB", "TARGET", "OUTCOME", "STATUS", "LATENCY", "DETAIL"], rows))
        let failed = results.filter { !$0.success }.count
        if failed > 0 { throw CommandFailure("\(failed) of \(results.count) checks failed") }
    }
}
