import ArgumentParser
import ConfigReading
import Foundation
import Logging
import ServiceLifecycle
import StandbyApp
import StandbyCore
import StandbyPrimitives
import StandbyProbe
import StandbyServer
import StandbyStore
import UnixSignals

/// `--config FILE`, falling back to `STANDBY_CONFIG`.
struct ConfigOption: ParsableArguments {
    @Option(name: .long, help: "Configuration file (YAML). Defaults to $STANDBY_CONFIG.")
    var config: String?

    var path: String {
        get throws {
            guard let path = config ?? ProcessInfo.processInfo.environment["STANDBY_CONFIG"] else {
                throw ValidationError("give --config FILE or set STANDBY_CONFIG")
            }
            return path
        }
    }

    func load() throws -> StandbyConfiguration {
        let path = try self.path
        do {
            return try ConfigLoader.load(file: path)
        } catch let error as ConfigError {
            throw CommandFailure(error.description)
        }
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the HTTP server (migrates the database first).")

    @OptionGroup var options: ConfigOption

    func run() async throws {
        let configuration = try options.load()
        let logging = configuration.logging
        LoggingSystem.bootstrap { StandbyLogHandler(label: $0, settings: logging) }
        let logger = Logger(label: "standby")
        let components: StandbyComponents
        do {
            components = try await StandbyComponents(configuration: configuration)
        } catch let error as StoreError {
            throw CommandFailure("cannot open \(configuration.storageDescription): \(error)")
        }
        let path = try options.path
        let fileHash = (try? Data(contentsOf: URL(fileURLWithPath: path)).sha256Hex) ?? ""
        try await components.recordConfigLoaded(file: path, fileSHA256: fileHash)
        let application = try buildApplication(components: components, logger: logger)
        var group = ServiceGroupConfiguration(
            services: [
                .init(service: application),
                .init(service: ReadinessService(readiness: components.readiness)),
            ],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger)
        // In-flight requests and commits get this long after SIGTERM; then the rest is cancelled.
        group.maximumGracefulShutdownDuration = .seconds(20)
        group.maximumCancellationDuration = .seconds(5)
        try await ServiceGroup(configuration: group).run()
        components.shutdown()
        logger.info("standby stopped")
    }
}

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Apply pending database migrations and exit.")

    @OptionGroup var options: ConfigOption

    func run() async throws {
        let configuration = try options.load()
        let place = configuration.storageDescription
        do {
            let (applied, new) = try await CommandStorage.migrate(configuration)
            print(
                new.isEmpty
                    ? "\(place): up to date (\(applied.count) migrations)"
                    : "\(place): applied \(new.joined(separator: ", "))")
        } catch let error as StoreError {
            throw CommandFailure("\(place): \(error)")
        }
    }
}

struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config", abstract: "Work with configuration files.", subcommands: [Check.self])

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate a configuration file; lists every problem with its key path.")

        @Argument(help: "The configuration file.")
        var file: String
        @Flag(help: "The file configures `standby probe`, not the server.") var probe = false

        func run() async throws {
            if probe {
                let (configuration, _) = try loadProbeConfiguration(file)
                print(
                    "\(file): ok (probe \(configuration.source), \(configuration.targets.count) targets, "
                        + "\(configuration.standby.urls.count) Standby URLs)")
                return
            }
            do {
                let configuration = try ConfigLoader.load(file: file)
                let hubs = configuration.topology.deployments.reduce(0) { $0 + $1.hubs.count }
                print("\(file): ok (\(configuration.topology.deployments.count) deployments, \(hubs) hubs)")
            } catch let error as ConfigError {
                throw CommandFailure(error.description)
            }
        }
    }
}

/// A failure the command explains itself; ArgumentParser prints it and exits non-zero.
struct CommandFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) {
        self.description = description
    }
}
