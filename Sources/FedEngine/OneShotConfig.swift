import FedNN
import Foundation

/// The `oneshot:` section of an experiment: one-shot federated learning, where the clients train
/// once and send their models (or, for FuseFL, K blocks) instead of taking part in many rounds.
///
/// ```yaml
/// oneshot:
///   method: [fusefl, fedavg, ensemble, feddf]
///   epochs: 10          # local epochs in all (FuseFL: epochs / blocks per stage)
///   blocks: 2           # FuseFL's K
///   adaptor: conv       # or mean
///   calibration: true   # CCVR on FuseFL's classifier
///   holdout: 10000      # training images without labels kept back from every client (FedDF's)
///   distill: {steps: 500, lr: 0.001, temperature: 1, batch_size: 128}
/// ```
/// The experiment's `partition.clients` is M; `local` sets batch size, learning rate and
/// momentum of the clients' SGD.
public struct OneShotConfig: Sendable, Equatable {
    public enum Method: String, Sendable, CaseIterable {
        /// Progressive fusion of K blocks (Tang et al., NeurIPS 2024).
        case fusefl
        /// The clients' models averaged once, weighted by their sample counts.
        case fedavg
        /// The M models side by side, their logits averaged.
        case ensemble
        /// The FedAvg model distilled from the ensemble on the unlabeled hold-out (Lin et al., 2020).
        case feddf
    }

    public struct Distillation: Sendable, Equatable {
        public var steps: Int
        public var learningRate: Double
        public var temperature: Double
        public var batchSize: Int
        /// The gradient's L2 norm is clipped to this before each Adam step (FedDF's 5).
        public var clipNorm: Double
    }

    public var methods: [Method]
    public var epochs: Int
    public var blocks: Int
    public var adaptor: FusedNetwork.Adaptor
    /// FuseFL's column width (the channels of its first block); nil: 16 / √M rounded to a
    /// multiple of 4, at least 4, so that the fused model is about one model's size.
    public var width: Int?
    public var calibration: Bool
    public var calibrationSamples: Int
    public var holdout: Int
    public var distill: Distillation

    /// FuseFL's column width for `clients` clients.
    public func columnWidth(clients: Int) -> Int {
        width ?? max(4, 4 * Int((16 / Double(clients).squareRoot() / 4).rounded()))
    }

    init(_ r: inout ConfigReader, model: String) throws {
        let names = OneShotConfig.Method.allCases.map(\.rawValue)
        let listed: [String]
        switch r.raw("method") {
        case nil: throw ConfigError(key: r.key("method"), "missing; one or a list of: \(names.joined(separator: ", "))")
        case let list as [Any]: listed = list.map { "\($0)" }
        case let one?: listed = ["\(one)"]
        }
        methods = []
        for name in listed {
            guard let m = Method(rawValue: name) else {
                throw ConfigError(
                    key: r.key("method"), "'\(name)' is not allowed; one of: \(names.joined(separator: ", "))")
            }
            guard !methods.contains(m) else { throw ConfigError(key: r.key("method"), "'\(name)' is listed twice") }
            methods.append(m)
        }
        guard !methods.isEmpty else { throw ConfigError(key: r.key("method"), "name at least one method") }
        epochs = try r.int("epochs", default: 10, range: 1...100_000)
        blocks = try r.int("blocks", default: 2, range: 1...64)
        adaptor = try r.choice("adaptor", default: .conv)
        width = try r.optionalInt("width", range: 2...4096)
        calibration = try r.bool("calibration", default: true)
        calibrationSamples = try r.int("calibration_samples", default: 5000, range: 1...10_000_000)
        holdout = try r.int("holdout", default: 10_000, range: 0...10_000_000)
        var d = try r.section("distill")
        distill = Distillation(
            steps: try d.int("steps", default: 500, range: 1...10_000_000),
            learningRate: try d.double("lr", default: 1e-3, range: 1e-12...100),
            temperature: try d.double("temperature", default: 1, range: 1e-3...1e3),
            batchSize: try d.int("batch_size", default: 128, range: 1...100_000),
            clipNorm: try d.double("clip_norm", default: 5, range: 1e-12...1e12))
        try d.finish()
        if methods.contains(.fusefl) {
            guard epochs % blocks == 0 else {
                throw ConfigError(
                    key: r.key("epochs"),
                    "FuseFL trains epochs / blocks epochs a stage: \(epochs) is not a multiple of \(blocks)")
            }
            do {
                _ = try ModelZoo.blocks(model, count: blocks)
            } catch let error as ModelError {
                throw ConfigError(key: r.key("blocks"), error.message)
            }
        }
        if methods.contains(.feddf) && holdout == 0 {
            throw ConfigError(key: r.key("holdout"), "FedDF distills on the hold-out: it must hold some images")
        }
    }

    var yaml: [String: Any] {
        var out: [String: Any] = [
            "method": methods.map(\.rawValue), "epochs": epochs, "blocks": blocks, "adaptor": adaptor.rawValue,
            "calibration": calibration, "calibration_samples": calibrationSamples, "holdout": holdout,
            "distill": [
                "steps": distill.steps, "lr": distill.learningRate, "temperature": distill.temperature,
                "batch_size": distill.batchSize, "clip_norm": distill.clipNorm,
            ],
        ]
        if let width { out["width"] = width }
        return out
    }
}
