import FedCore
import FedData
import FedNN
import Foundation
import Yams

/// Everything that defines a simulated federated experiment, read from YAML.
///
/// ```yaml
/// name: fmnist-fedavg
/// seed: 0
/// rounds: 50
/// clients_per_round: 10
/// model: cnn
/// partition: {scheme: dirichlet, clients: 100, alpha: 0.5}
/// strategy: {name: fedavg}
/// local: {epochs: 1, batch_size: 32, lr: 0.01}
/// ```
public struct ExperimentConfig: Sendable {
    public struct Partitioning: Sendable {
        public var scheme: PartitionScheme.Kind
        public var clients: Int
        public var alpha: Double
        public var minSize: Int
        public var shardsPerClient: Int
        public var sigma: Double

        /// The partitioner's scheme with its parameters.
        public var partitionScheme: PartitionScheme {
            PartitionScheme(scheme, alpha: alpha, minSize: minSize, shardsPerClient: shardsPerClient, sigma: sigma)
        }
    }

    public struct LocalTraining: Sendable {
        /// Local epochs over the client's data, unless `steps` is set.
        public var epochs: Int
        /// A fixed number of local SGD steps instead of epochs.
        public var steps: Int?
        public var batchSize: Int
        public var learningRate: Double
        public var momentum: Double
        public var weightDecay: Double

        public init(
            epochs: Int = 1, steps: Int? = nil, batchSize: Int = 32, learningRate: Double = 0.01, momentum: Double = 0,
            weightDecay: Double = 0
        ) {
            self.epochs = epochs
            self.steps = steps
            self.batchSize = batchSize
            self.learningRate = learningRate
            self.momentum = momentum
            self.weightDecay = weightDecay
        }
    }

    public struct Evaluation: Sendable {
        /// Evaluate the global model every `every` rounds (and after the last).
        public var every: Int
        public var batchSize: Int
        /// Evaluate on the first `samples` test images (all by default).
        public var samples: Int?
    }

    public struct Devices: Sendable {
        public var computeMsPerSample: Distribution
        public var uplinkKbps: Distribution
        public var downlinkKbps: Distribution
        public var latencyMs: Distribution
        /// CSV trace (client id, compute ms per sample, uplink kbit/s, downlink kbit/s[, availability]).
        public var trace: String?
    }

    public var name: String
    public var seed: UInt64
    public var rounds: Int
    public var workers: Int
    public var dataset: String
    public var dataDirectory: String?
    public var model: String
    public var partition: Partitioning
    public var strategy: String
    public var strategyParameters: [String: Double]
    /// The strategy's text settings (FedImpro's `cut`).
    public var strategyOptions: [String: String] = [:]
    public var clientsPerRound: Int
    public var local: LocalTraining
    public var evaluation: Evaluation
    public var devices: Devices
    /// Round deadline in virtual seconds; clients finishing later are stragglers.
    public var deadlineSeconds: Double?
    /// Probability that a selected client drops out of a round.
    public var dropout: Double
    /// Select `ceil(k·(1 + overSelection))` clients and keep the first `k` to finish.
    public var overSelection: Double
    /// A round with fewer completed clients is skipped (the model is unchanged).
    public var minCompleted: Int
    /// Updates whose L2 norm is larger are rejected by the server (nil: no bound).
    public var maximumUpdateNorm: Double?
    /// Write a checkpoint every this many rounds (and after the last, and when stopped).
    public var checkpointEvery: Int
    /// Update and model compression; `.none` sends dense float32 both ways.
    public var compression: CompressionConfig
    /// One-shot federated learning (`fedswift oneshot`); nil for round-based experiments.
    public var oneShot: OneShotConfig?

    /// Parses a YAML document, applying `overrides` (`key.path=value`, value in YAML syntax) first.
    /// - Throws: `ConfigError` naming the offending key.
    public static func parse(yaml text: String, overrides: [String] = []) throws -> ExperimentConfig {
        let loaded: Any?
        do {
            loaded = try Yams.load(yaml: text)
        } catch {
            throw ConfigError(key: "", "not valid YAML: \(error)")
        }
        guard var root = loaded as? [String: Any] else {
            throw ConfigError(key: "", "the experiment file must be a YAML mapping of keys to values")
        }
        for o in overrides {
            guard let eq = o.firstIndex(of: "="), eq != o.startIndex else {
                throw ConfigError(key: o, "an override must look like key=value (e.g. rounds=20)")
            }
            let path = o[..<eq].split(separator: ".").map(String.init)
            let valueText = String(o[o.index(after: eq)...])
            let value: Any = (try? Yams.load(yaml: valueText)).flatMap { $0 } ?? valueText
            root = set(root, path: path[...], value: value)
        }
        return try ExperimentConfig(root)
    }

    /// Reads and parses an experiment file.
    public static func load(path: String, overrides: [String] = []) throws -> ExperimentConfig {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8)
        else {
            throw ConfigError(key: "", "cannot read experiment file '\(path)'")
        }
        return try parse(yaml: text, overrides: overrides)
    }

    private static func set(_ dict: [String: Any], path: ArraySlice<String>, value: Any) -> [String: Any] {
        var d = dict
        guard let head = path.first else { return d }
        if path.count == 1 {
            d[head] = value
        } else {
            d[head] = set(d[head] as? [String: Any] ?? [:], path: path.dropFirst(), value: value)
        }
        return d
    }

    init(_ root: [String: Any]) throws {
        var r = ConfigReader(root)
        name = try r.string("name", default: "experiment")
        seed = UInt64(try r.int("seed", default: 0, range: 0...Int.max))
        // A one-shot experiment has no rounds and every client takes part.
        let isOneShot = r.has("oneshot")
        rounds = try r.int("rounds", default: isOneShot ? 1 : nil, range: 1...1_000_000)
        workers = try r.int("workers", default: ProcessInfo.processInfo.activeProcessorCount, range: 1...256)
        var ds = try r.section("dataset")
        dataset = try ds.string("name", default: "fmnist", allowed: ["fmnist"])
        dataDirectory = ds.optionalString("directory")
        try ds.finish()
        model = try r.string("model")
        guard ModelZoo.isKnown(model) else {
            throw ConfigError(key: "model", "'\(model)' is not allowed; one of: \(ModelZoo.usage)")
        }

        var p = try r.section("partition")
        let scheme: PartitionScheme.Kind = try p.choice("scheme", default: .iid)
        partition = Partitioning(
            scheme: scheme, clients: try p.int("clients", range: 1...1_000_000),
            alpha: try p.double("alpha", default: 0.5, range: 1e-6...1e6),
            minSize: try p.int("min_size", default: 10, range: 0...1_000_000),
            shardsPerClient: try p.int("shards_per_client", default: 2, range: 1...10_000),
            sigma: try p.double("sigma", default: 1, range: 0...10))
        try p.finish()

        var s = try r.section("strategy")
        strategy = try s.string("name", default: "fedavg", allowed: StrategyFactory.strategyNames)
        let textKeys = StrategyFactory.optionKeys[strategy] ?? []
        strategyParameters = try s.numbers(except: Set(["name"] + textKeys))
        for key in textKeys {
            if let value = s.optionalString(key) { strategyOptions[key] = value }
        }
        do {
            _ = try StrategyFactory.makeStrategy(
                name: strategy, parameters: strategyParameters, options: strategyOptions, model: model, seed: seed)
        } catch let error as StrategyError {
            throw ConfigError(key: error.code == .unknownStrategy ? s.key("name") : s.path, error.message)
        }
        try s.finish()

        clientsPerRound = try r.int(
            "clients_per_round", default: isOneShot ? partition.clients : nil, range: 1...partition.clients)
        var l = try r.section("local")
        local = LocalTraining(
            epochs: try l.int("epochs", default: 1, range: 1...10_000),
            steps: try l.optionalInt("steps", range: 1...10_000_000),
            batchSize: try l.int("batch_size", default: 32, range: 1...100_000),
            learningRate: try l.double("lr", default: 0.01, range: 1e-12...100),
            momentum: try l.double("momentum", default: 0, range: 0...0.999_999),
            weightDecay: try l.double("weight_decay", default: 0, range: 0...10))
        try l.finish()

        var e = try r.section("evaluation")
        evaluation = Evaluation(
            every: try e.int("every", default: 1, range: 1...1_000_000),
            batchSize: try e.int("batch_size", default: 100, range: 1...100_000),
            samples: try e.optionalInt("samples", range: 1...10_000_000))
        try e.finish()

        var d = try r.section("devices")
        devices = Devices(
            computeMsPerSample: try Distribution.parse(&d, "compute_ms_per_sample", default: .constant(1)),
            uplinkKbps: try Distribution.parse(&d, "uplink_kbps", default: .constant(100_000)),
            downlinkKbps: try Distribution.parse(&d, "downlink_kbps", default: .constant(100_000)),
            latencyMs: try Distribution.parse(&d, "latency_ms", default: .constant(0), allowZero: true),
            trace: d.optionalString("trace"))
        try d.finish()

        deadlineSeconds = try r.optionalDouble("deadline_s", range: 1e-9...1e12)
        dropout = try r.double("dropout", default: 0, range: 0...0.999_999)
        overSelection = try r.double("over_selection", default: 0, range: 0...10)
        minCompleted = try r.int("min_completed", default: 1, range: 1...clientsPerRound)
        maximumUpdateNorm = try r.optionalDouble("max_update_norm", range: 1e-30...1e30)
        checkpointEvery = try r.int("checkpoint_every", default: 5, range: 1...1_000_000)
        var c = try r.section("compression")
        compression = try CompressionConfig(&c)
        try c.finish()
        if isOneShot {
            var o = try r.section("oneshot")
            oneShot = try OneShotConfig(&o, model: model)
            try o.finish()
            // What a one-shot run would silently ignore is refused.
            if local.steps != nil {
                throw ConfigError(
                    key: "local.steps", "a one-shot run trains oneshot.epochs epochs; leave out local.steps")
            }
            if clientsPerRound != partition.clients {
                throw ConfigError(key: "clients_per_round", "every client takes part in a one-shot run")
            }
            if compression.uplink != nil || compression.downlink != nil || compression.aggregation != .plain {
                throw ConfigError(key: "compression", "one-shot runs send dense safetensors messages; leave it out")
            }
        }
        try r.finish()
    }

    /// What decides the run's results, as text: the resolved configuration without the settings
    /// that do not change them (rounds, so that a resumed run can be extended; workers; the
    /// checkpoint cadence). Two runs with the same fingerprint compute the same rounds.
    public var fingerprint: String {
        var neutral = self
        neutral.rounds = 1
        neutral.workers = 1
        neutral.checkpointEvery = 1
        return neutral.yaml()
    }

    /// The experiment's strategy, built from its name, parameters, options, model and seed.
    /// - Throws: ``FedCore/StrategyError`` for settings the strategy refuses.
    public func makeStrategy() throws -> any Strategy {
        try StrategyFactory.makeStrategy(
            name: strategy, parameters: strategyParameters, options: strategyOptions, model: model, seed: seed)
    }

    /// The resolved configuration as YAML (every default spelled out).
    public func yaml() -> String {
        var strategyMap: [String: Any] = ["name": strategy]
        for (k, v) in strategyParameters { strategyMap[k] = v }
        for (k, v) in strategyOptions { strategyMap[k] = v }
        var root: [String: Any] = [
            "name": name, "seed": Int(seed), "rounds": rounds, "workers": workers,
            "dataset": ["name": dataset].merging(dataDirectory.map { ["directory": $0] } ?? [:]) { a, _ in a },
            "model": model,
            "partition": [
                "scheme": partition.scheme.rawValue, "clients": partition.clients, "alpha": partition.alpha,
                "min_size": partition.minSize, "shards_per_client": partition.shardsPerClient, "sigma": partition.sigma,
            ],
            "strategy": strategyMap, "clients_per_round": clientsPerRound,
            "local": [
                "epochs": local.epochs, "batch_size": local.batchSize, "lr": local.learningRate,
                "momentum": local.momentum, "weight_decay": local.weightDecay,
            ].merging(local.steps.map { ["steps": $0] } ?? [:]) { a, _ in a },
            "evaluation": ["every": evaluation.every, "batch_size": evaluation.batchSize]
                .merging(evaluation.samples.map { ["samples": $0] } ?? [:]) { a, _ in a },
            "devices": [
                "compute_ms_per_sample": devices.computeMsPerSample.yaml, "uplink_kbps": devices.uplinkKbps.yaml,
                "downlink_kbps": devices.downlinkKbps.yaml, "latency_ms": devices.latencyMs.yaml,
            ].merging(devices.trace.map { ["trace": $0] } ?? [:]) { a, _ in a },
            "dropout": dropout, "over_selection": overSelection, "min_completed": minCompleted,
            "checkpoint_every": checkpointEvery,
        ]
        if let deadlineSeconds { root["deadline_s"] = deadlineSeconds }
        if let maximumUpdateNorm { root["max_update_norm"] = maximumUpdateNorm }
        if let oneShot { root["oneshot"] = oneShot.yaml }
        if compression.uplink != nil || compression.downlink != nil || compression.aggregation != .plain {
            root["compression"] = compression.yaml
        }
        return (try? Yams.dump(object: root, sortKeys: true)) ?? ""
    }
}
