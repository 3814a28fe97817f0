import ArgumentParser

/// The `fedswift` command-line tool.
@main
struct FedSwiftCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fedswift",
        abstract: "Communication-efficient federated and distributed learning in Swift.",
        subcommands: [
            Train.self, Eval.self, Predict.self, Partition.self, Simulate.self, OneShot.self, Serve.self, Join.self,
            FlowerNodeCommand.self, FlowerKey.self, InitModel.self,
            ReportCommand.self,
            CodecsCommand.self,
            Bench.self, FuzzCommand.self, Info.self,
        ]
    )
}
