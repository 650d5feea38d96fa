import ArgumentParser

@main
struct Standby: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "standby",
        abstract: "Decides when traffic for a multi-region AI hub deployment moves, and tells the application layer.",
        subcommands: [
            Serve.self, Probe.self, Migrate.self, ConfigCommand.self, Status.self, Export.self, Audit.self, Prune.self,
            Token.self, Report.self, Replay.self,
        ]
    )
}
