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

    /// The checkpoint's path in this folder.
    public var checkpointPath: String { path + "/" + Checkpoint.fileName }

    /// Creates the folder (and parents) and writes the resolved configuration; with `resuming`,
    /// the metrics files are rewritten to hold exactly those lines (the rows of the checkpoint a
    /// run resumes from), else they start empty.
    public init(path: String, config: ExperimentConfig, resuming lines: (json: [String], csv: [String])? = nil) throws {
        self.path = path
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw ConfigError(key: "--out", "cannot create output directory '\(path)': \(error.localizedDescription)")
        }
        // Temporary files of atomic writes a killed run left behind (the files they were to replace are intact).
        let files = ["config.yaml", "metrics.jsonl", "metrics.csv", "model.safetensors", Checkpoint.fileName]
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        where files.contains(where: { entry.hasPrefix(".\($0).tmp-") }) {
            try? FileManager.default.removeItem(atPath: path + "/" + entry)
        }
        try AtomicFile.write(Array(config.yaml().utf8), to: path + "/config.yaml")
        let header = RoundMetrics.columns.joined(separator: ",")
        let json = lines?.json ?? []
        let csv = [header] + (lines?.csv ?? [])
        try AtomicFile.write(Array(json.map { $0 + "\n" }.joined().utf8), to: path + "/metrics.jsonl")
        try AtomicFile.write(Array(csv.map { $0 + "\n" }.joined().utf8), to: path + "/metrics.csv")
        guard let j = FileHandle(forWritingAtPath: path + "/metrics.jsonl"),
            let c = FileHandle(forWritingAtPath: path + "/metrics.csv")
        else { throw ConfigError(key: "--out", "cannot write metrics files in '\(path)'") }
        j.seekToEndOfFile()
        c.seekToEndOfFile()
        jsonl = j
        self.csv = c
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
