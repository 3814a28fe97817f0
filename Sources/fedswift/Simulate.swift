import ArgumentParser
import FedCore
import FedData
import FedEngine
import FedNN
import FedSim
import FedTensor
import Foundation

extension FedSwiftCommand {
    /// A federated experiment on virtual clients.
    struct Simulate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a federated experiment from a YAML file on simulated clients.",
            discussion: "Writes config.yaml, metrics.jsonl, metrics.csv and model.safetensors to the output directory.")

        @Argument(help: "Experiment YAML file.") var experiment: String
        @Option(
            name: .customLong("set"), help: "Override a key, e.g. --set rounds=20 --set local.lr=0.05 (repeatable).")
        var overrides: [String] = []
        @Option(help: "Output directory (default: runs/<name>).") var out: String?
        @OptionGroup var compute: BackendOptions

        func run() throws {
            try compute.apply()
            let config: ExperimentConfig
            do {
                config = try ExperimentConfig.load(path: experiment, overrides: overrides)
            } catch let error as ConfigError {
                throw ValidationError("\(experiment): \(error)")
            }
            let dir = try RunDirectory(path: out ?? "runs/\(config.name)", config: config)
            let data = try FashionMNIST.load(directory: config.dataDirectory)
            let sim = try Simulation(config: config, data: data)
            print(
                "\(config.name): \(config.model) (\(sim.model.parameterCount) parameters), \(config.strategy), "
                    + "\(config.partition.clients) clients (\(config.partition.scheme)), \(config.clientsPerRound) per round, "
                    + "\(config.rounds) rounds, \(config.workers) workers, seed \(config.seed), \(ComputeBackend.current) backend"
            )
            let rows = try sim.run { row in
                dir.append(row)
                let acc = row.testAccuracy.map { fmt($0, 4) } ?? "-"
                let eta = row.wallTime / Double(row.round) * Double(config.rounds - row.round)
                var line =
                    "round \(row.round)/\(config.rounds)  accuracy \(acc)  train loss \(row.trainLoss.map { fmt($0, 4) } ?? "-")"
                line += "  virtual \(fmt(row.virtualTime, 1)) s  wall \(fmt(row.wallTime, 1)) s  ETA \(fmt(eta, 0)) s"
                line += "  clients \(row.completed)/\(row.selected)"
                if let skipped = row.skipped { line += "  skipped: \(skipped)" }
                print(line)
            }
            try dir.saveModel(
                sim.model,
                metadata: ["format": "pt", "fedswift.model": config.model, "fedswift.seed": "\(config.seed)"])
            let final = rows.last?.testAccuracy.map { fmt($0, 4) } ?? "-"
            print("final test accuracy \(final); metrics in \(dir.path)/metrics.jsonl")
        }
    }
}
