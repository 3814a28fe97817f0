import ArgumentParser
import FedData
import FedEngine
import FedNN
import FedSim
import FedTensor
import Foundation

extension FedSwiftCommand {
    /// One-shot federated learning on simulated clients: FuseFL and the one-round baselines.
    struct OneShot: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "oneshot",
            abstract: "Run one-shot federated learning (FuseFL, one-round FedAvg, Ensemble, FedDF) from a YAML file.",
            discussion: """
                The experiment needs a `oneshot:` section (method, epochs, blocks, adaptor, calibration, holdout, \
                distill). Writes config.yaml, metrics.jsonl (a row per stage: what it sent and how long it took), \
                results.json (accuracy, bytes, virtual time, model size and inference cost per method) and the \
                final models as METHOD.safetensors (FuseFL's fused model with names blocks.J.columns.M.…) to \
                the output directory.
                """)

        @Argument(help: "Experiment YAML file with a oneshot section.") var experiment: String
        @Option(name: .customLong("set"), help: "Override a key, e.g. --set oneshot.blocks=4 (repeatable).")
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
            guard let settings = config.oneShot else {
                throw ValidationError("\(experiment): oneshot: missing; `fedswift oneshot` runs the oneshot section")
            }
            let path = out ?? "runs/\(config.name)"
            let data = try FashionMNIST.load(directory: config.dataDirectory)
            let sim = try OneShotSimulation(config: config, data: data)
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            try AtomicFile.write(Array(config.yaml().utf8), to: path + "/config.yaml")
            print(
                "\(config.name): \(settings.methods.map(\.rawValue).joined(separator: ", ")), \(config.model), "
                    + "\(config.partition.clients) clients (\(config.partition.scheme)), \(settings.epochs) epochs, "
                    + "\(settings.holdout) images held out, seed \(config.seed), \(ComputeBackend.current) backend")
            let results = try sim.run { print($0) }
            var lines = ""
            for s in sim.stages {
                var row: [String: Any] = [
                    "method": s.method, "stage": s.name, "bytes_up": s.bytesUp, "bytes_down": s.bytesDown,
                    "virtual_s": s.virtualSeconds, "wall_s": s.wallSeconds,
                ]
                if let loss = s.trainLoss { row["train_loss"] = loss }
                lines +=
                    String(
                        decoding: try JSONSerialization.data(withJSONObject: row, options: [.sortedKeys]), as: UTF8.self
                    ) + "\n"
            }
            try AtomicFile.write(Array(lines.utf8), to: path + "/metrics.jsonl")
            var summary: [[String: Any]] = []
            for r in results {
                summary.append(
                    [
                        "method": r.method, "accuracy": r.accuracy, "loss": r.loss, "bytes_up": r.bytesUp,
                        "bytes_down": r.bytesDown, "virtual_s": r.virtualSeconds, "wall_s": r.wallSeconds,
                        "parameters": r.parameters, "model_bytes": r.modelBytes,
                        "inference_ms_per_1000": r.inferenceMsPer1000,
                    ].merging(r.memberAccuracies.isEmpty ? [:] : ["member_accuracies": r.memberAccuracies]) { a, _ in a
                    })
                print(
                    "\(r.method): accuracy \(fmt(r.accuracy, 4)), \(r.bytesUp) bytes up, \(r.bytesDown) down, "
                        + "\(r.parameters) parameters, \(fmt(r.inferenceMsPer1000, 1)) ms per 1,000 images")
            }
            let json = try JSONSerialization.data(
                withJSONObject: ["results": summary, "cpu": Info.cpuModel()], options: [.sortedKeys, .prettyPrinted])
            try AtomicFile.write(Array(json), to: path + "/results.json")
            let setup = sim.fuseFLSetup
            for (method, model) in sim.models.sorted(by: { $0.key < $1.key }) {
                var metadata = ["format": "pt", "fedswift.method": method, "fedswift.seed": "\(config.seed)"]
                if method == "fusefl" {
                    metadata["fedswift.model"] = "fusefl"
                    metadata[FuseFLSetup.metadataKey] = setup.metadataValue
                } else {
                    metadata["fedswift.model"] = config.model
                }
                try SafeTensors.write(model.stateDict(), metadata: metadata, to: path + "/\(method).safetensors")
            }
            print("results in \(path)/results.json")
        }
    }
}
