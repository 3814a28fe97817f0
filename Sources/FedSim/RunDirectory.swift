import FedEngine
import FedNN
import FedTensor
import Foundation

/// A run's output folder: `config.yaml` (resolved, with the seed), `metrics.jsonl`,
/// `metrics.csv` (a row per round, written as rounds finish) and `model.safetensors`.
public final class RunDirectory {
    public let path: String
    private let jsonl: FileHandle
    private let csv: FileHandle

    /// Creates the folder (and parents) and writes the resolved configuration.
    public init(path: String, config: ExperimentConfig) throws {
        self.path = path
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw ConfigError(key: "--out", "cannot create output directory '\(path)': \(error.localizedDescription)")
        }
        try AtomicFile.write(Array(config.yaml().utf8), to: path + "/config.yaml")
        for name in ["metrics.jsonl", "metrics.csv"] {
            _ = FileManager.default.createFile(atPath: path + "/" + name, contents: nil)
        }
        guard let j = FileHandle(forWritingAtPath: path + "/metrics.jsonl"),
            let c = FileHandle(forWritingAtPath: path + "/metrics.csv")
        else { throw ConfigError(key: "--out", "cannot write metrics files in '\(path)'") }
        jsonl = j
        csv = c
        csv.write(Data((RoundMetrics.columns.joined(separator: ",") + "\n").utf8))
    }

    /// Appends one round to both metrics files.
    public func append(_ row: RoundMetrics) {
        jsonl.write(Data((row.jsonLine + "\n").utf8))
        csv.write(Data((row.csvLine + "\n").utf8))
    }

    /// Saves the model atomically as `model.safetensors`.
    public func saveModel(_ model: Model, metadata: [String: String]) throws {
        try SafeTensors.write(model.stateDict(), metadata: metadata, to: path + "/model.safetensors")
    }

    deinit {
        try? jsonl.close()
        try? csv.close()
    }
}
