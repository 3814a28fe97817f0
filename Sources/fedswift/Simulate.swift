import ArgumentParser
import Dispatch
import FedCore
import FedData
import FedEngine
import FedNN
import FedSim
import FedTensor
import Foundation
import Synchronization

extension FedSwiftCommand {
    /// A federated experiment on virtual clients.
    struct Simulate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a federated experiment from a YAML file on simulated clients.",
            discussion: """
                Writes config.yaml, metrics.jsonl, metrics.csv, model.safetensors and checkpoint.safetensors \
                (every checkpoint_every rounds, after the last, and on SIGINT or SIGTERM, which stop the run \
                after the round in progress) to the output directory. `--resume DIR` continues a stopped or \
                killed run from its checkpoint, with results bit-identical to an uninterrupted run.
                """)

        @Argument(help: "Experiment YAML file (with --resume: optional, and then it must match the checkpoint).")
        var experiment: String?
        @Option(
            name: .customLong("set"), help: "Override a key, e.g. --set rounds=20 --set local.lr=0.05 (repeatable).")
        var overrides: [String] = []
        @Option(help: "Output directory (default: runs/<name>).") var out: String?
        @Option(help: "Continue the run in this output directory from its checkpoint.") var resume: String?
        @Option(help: "Write a checkpoint every N rounds (default: the experiment's checkpoint_every, else 5).")
        var checkpointEvery: Int?
        @OptionGroup var compute: BackendOptions

        func validate() throws {
            if experiment == nil && resume == nil { throw ValidationError("give an experiment file, or --resume DIR") }
            if resume != nil && out != nil { throw ValidationError("--resume DIR writes to DIR; leave out --out") }
            if let n = checkpointEvery, n < 1 { throw ValidationError("--checkpoint-every must be at least 1") }
        }

        func run() throws {
            try compute.apply()
            if let resume, !FileManager.default.fileExists(atPath: resume + "/" + Checkpoint.fileName) {
                throw ValidationError("\(resume) holds no checkpoint to resume from (\(Checkpoint.fileName))")
            }
            var config = try loadConfig()
            if let checkpointEvery { config.checkpointEvery = checkpointEvery }
            let path = resume ?? out ?? "runs/\(config.name)"
            let checkpointPath = path + "/" + Checkpoint.fileName
            var checkpoint: Checkpoint?
            if resume != nil {
                checkpoint = try Checkpoint.read(path: checkpointPath)
            } else if let existing = try? Checkpoint.read(path: checkpointPath),
                let planned = existing.values["simulation/rounds_planned"].flatMap(Int.init),
                let done = existing.values["engine/round"].flatMap(Int.init), done < planned
            {
                throw ValidationError(
                    "\(path) holds the checkpoint of an unfinished run (round \(done) of \(planned)); "
                        + "continue it with `fedswift simulate --resume \(path)` or choose another --out")
            }
            let data = try FashionMNIST.load(directory: config.dataDirectory)
            let sim = try Simulation(config: config, data: data)
            if let checkpoint {
                do {
                    try sim.restore(from: checkpoint)
                } catch let error as CheckpointError {
                    throw ValidationError("cannot resume from \(checkpointPath): \(error)")
                }
            }
            // Only now, with the checkpoint accepted, is anything in the directory rewritten.
            let dir = try RunDirectory(
                path: path, config: config, resuming: checkpoint == nil ? nil : (sim.jsonLines, sim.csvLines))
            print(
                "\(config.name): \(config.model) (\(sim.model.parameterCount) parameters), \(config.strategy), "
                    + "\(config.partition.clients) clients (\(config.partition.scheme)), \(config.clientsPerRound) per round, "
                    + "\(config.rounds) rounds, \(config.workers) workers, seed \(config.seed), \(ComputeBackend.current) backend"
                    + (checkpoint == nil ? "" : "; resuming after round \(sim.round)"))
            let stop = StopSignals()
            let report: (RoundMetrics) -> Void = { row in
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
            let rows = try sim.run(
                checkpoint: dir.checkpointPath, shouldStop: { stop.received != 0 }, onRound: report)
            if sim.round < config.rounds {
                print("stopped after round \(sim.round); continue with `fedswift simulate --resume \(path)`")
                throw ExitCode(128 + stop.received)
            }
            try dir.saveModel(
                sim.model,
                metadata: ["format": "pt", "fedswift.model": config.model, "fedswift.seed": "\(config.seed)"])
            let final = rows.last?.testAccuracy.map { fmt($0, 4) } ?? "-"
            print("final test accuracy \(final); metrics in \(dir.path)/metrics.jsonl")
        }

        /// The experiment file (with overrides), or the resumed run's own config.yaml.
        private func loadConfig() throws -> ExperimentConfig {
            let source = experiment ?? (resume! + "/config.yaml")
            do {
                let config = try ExperimentConfig.load(path: source, overrides: overrides)
                if let resume, experiment != nil {
                    let saved = try ExperimentConfig.load(path: resume + "/config.yaml", overrides: overrides)
                    guard saved.fingerprint == config.fingerprint else {
                        throw ValidationError(
                            "\(source) is not the experiment of the run in \(resume) (its config.yaml differs)")
                    }
                }
                return config
            } catch let error as ConfigError {
                throw ValidationError("\(source): \(error)")
            }
        }
    }
}

/// SIGINT and SIGTERM, turned from "terminate now" into "stop after this round": `received` is the
/// first signal's number (0 before any). A second signal ends the process at once.
final class StopSignals: @unchecked Sendable {  // sources are set once; the signal is atomic
    private static let signal = Atomic<Int32>(0)
    private let sources: [any DispatchSourceSignal]

    init() {
        sources = [SIGINT, SIGTERM].map { number in
            Foundation.signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                if StopSignals.signal.exchange(number, ordering: .relaxed) != 0 { _exit(128 + number) }
                FileHandle.standardError.write(
                    Data("signal \(number): stopping after the round in progress (again to stop at once)\n".utf8))
                FaultInjection.acknowledge()
            }
            source.resume()
            return source
        }
    }

    var received: Int32 { Self.signal.load(ordering: .relaxed) }
}
