import ArgumentParser

/// The `fedswift` command-line tool.
@main
struct FedSwiftCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fedswift",
        abstract: "Communication-efficient federated and distributed learning in Swift.",
        subcommands: [
            Train.self, Eval.self, Predict.self, Partition.self, Simulate.self, ReportCommand.self, CodecsCommand.self,
            Bench.self, FuzzCommand.self, Info.self,
        ]
    )
}
