import FedNN

/// Builds strategies from the names and parameter keys used in experiment configs. ``registry`` is
/// the only list of strategies: each entry names its parameters and builds the strategy.
///
/// ```swift
/// let strategy = try StrategyFactory.makeStrategy(name: "fedyogi", parameters: ["server_learning_rate": 0.03])
/// ```
public enum StrategyFactory {
    /// One registered strategy.
    public struct Entry: Sendable {
        public let name: String
        /// The parameter keys it accepts; a key left out takes the strategy's default.
        public let parameters: [String]
        /// The keys whose values are text (FedImpro's `cut`), not numbers.
        public var options: [String] = []
        let build: @Sendable (Arguments) throws -> any Strategy

        init(
            name: String, parameters: [String], options: [String] = [],
            build: @escaping @Sendable (Arguments) throws -> any Strategy
        ) {
            self.name = name
            self.parameters = parameters
            self.options = options
            self.build = build
        }
    }

    /// Checked access to the parameters given for one strategy.
    public struct Arguments: Sendable {
        let strategy: String
        let given: [String: Double]
        let options: [String: String]
        /// The experiment's model and seed, for strategies shaped by the model (FedImpro).
        let model: String?
        let seed: UInt64

        /// `given[key]` after checking it is finite, non-negative, and positive or below 1 if asked.
        func value(_ key: String, positive: Bool = false, belowOne: Bool = false) throws -> Double? {
            guard let value = given[key] else { return nil }
            let range = belowOne ? "in [0, 1)" : positive ? "positive" : "non-negative"
            guard value.isFinite, value >= 0, !positive || value > 0, !belowOne || value < 1 else {
                throw StrategyError(.invalidParameter, "strategy '\(strategy)': \(key) is \(value), must be \(range)")
            }
            return value
        }

        var serverLearningRate: Double? { get throws { try value("server_learning_rate", positive: true) } }

        /// `given[key]` as a whole number of at most a million.
        func count(_ key: String) throws -> Int? {
            guard let v = try value(key) else { return nil }
            guard v == v.rounded(), v <= 1_000_000 else {
                throw StrategyError(
                    .invalidParameter, "strategy '\(strategy)': \(key) is \(v), must be a whole number up to 1,000,000")
            }
            return Int(v)
        }
    }

    public static let registry: [Entry] =
        [
            Entry(name: "fedavg", parameters: ["server_learning_rate"]) { a in
                FedAvg(serverLearningRate: try a.serverLearningRate ?? 1)
            },
            Entry(name: "fedavgm", parameters: ["server_learning_rate", "momentum"]) { a in
                FedAvgM(
                    serverLearningRate: try a.serverLearningRate ?? 1,
                    momentum: try a.value("momentum", belowOne: true) ?? 0.9
                )
            },
            Entry(name: "fedprox", parameters: ["server_learning_rate", "mu"]) { a in
                FedProx(mu: try a.value("mu") ?? 0.01, serverLearningRate: try a.serverLearningRate ?? 1)
            },
            Entry(name: "scaffold", parameters: ["server_learning_rate"]) { a in
                Scaffold(serverLearningRate: try a.serverLearningRate ?? 1)
            },
            Entry(name: "fednova", parameters: ["server_learning_rate", "local_momentum"]) { a in
                FedNova(
                    localMomentum: try a.value("local_momentum", belowOne: true) ?? 0,
                    serverLearningRate: try a.serverLearningRate ?? 1)
            },
            Entry(name: "feddyn", parameters: ["alpha"]) { a in
                FedDyn(alpha: try a.value("alpha", positive: true) ?? 0.01)
            },
            Entry(
                name: "fedimpro",
                parameters: [
                    "server_learning_rate", "momentum", "std_cap", "privacy_noise", "synthetic_weight", "ramp_rounds",
                ],
                options: ["cut"]
            ) { a in
                guard let model = a.model else {
                    throw StrategyError(.invalidParameter, "strategy 'fedimpro' needs the experiment's model")
                }
                guard let cut = a.options["cut"] else {
                    throw StrategyError(
                        .invalidParameter, "strategy 'fedimpro' needs 'cut', the layer after which the model is split")
                }
                do {
                    return try FedImpro(
                        model: model, cut: cut, seed: a.seed, momentum: try a.value("momentum", belowOne: true) ?? 0,
                        maximumStd: try a.value("std_cap", positive: true) ?? 0.1,
                        privacyNoise: try a.value("privacy_noise") ?? 0,
                        syntheticWeight: try a.value("synthetic_weight") ?? 1,
                        rampRounds: try a.count("ramp_rounds") ?? 0,
                        serverLearningRate: try a.serverLearningRate ?? 1)
                } catch let error as ModelError {
                    throw StrategyError(.invalidParameter, "strategy 'fedimpro': \(error.message)")
                }
            },
        ]
        + FedOpt.Variant.allCases.map { variant in
            Entry(
                name: variant.rawValue,
                parameters: ["server_learning_rate", "beta1"] + (variant == .adagrad ? [] : ["beta2"]) + ["tau"]
            ) { a in
                FedOpt(
                    variant, serverLearningRate: try a.serverLearningRate, beta1: try a.value("beta1", belowOne: true),
                    beta2: try a.value("beta2", belowOne: true), tau: try a.value("tau", positive: true))
            }
        }

    /// The accepted strategy names, in a stable order.
    public static let strategyNames = registry.map(\.name)

    /// The parameter keys each strategy accepts.
    public static let parameterKeys = Dictionary(uniqueKeysWithValues: registry.map { ($0.name, $0.parameters) })

    /// The text keys each strategy accepts.
    public static let optionKeys = Dictionary(uniqueKeysWithValues: registry.map { ($0.name, $0.options) })

    /// The strategy called `name` (case-insensitive) with `parameters` and text `options`
    /// overriding its defaults, for an experiment on the zoo model `model` with `seed`.
    /// - Throws: ``StrategyError`` naming the accepted strategies for an unknown name, the accepted keys for
    ///   an unknown key, and the accepted range for an out-of-range value.
    public static func makeStrategy(
        name: String, parameters: [String: Double] = [:], options: [String: String] = [:], model: String? = nil,
        seed: UInt64 = 0
    ) throws -> any Strategy {
        let key = name.lowercased()
        guard let entry = registry.first(where: { $0.name == key }) else {
            throw StrategyError(
                .unknownStrategy,
                "unknown strategy '\(name)'; choose one of \(strategyNames.joined(separator: ", "))")
        }
        for parameter in parameters.keys.sorted() where !entry.parameters.contains(parameter) {
            throw StrategyError(
                .unknownParameter,
                "strategy '\(key)' has no parameter '\(parameter)'; it accepts \((entry.parameters + entry.options).joined(separator: ", "))"
            )
        }
        for option in options.keys.sorted() where !entry.options.contains(option) {
            throw StrategyError(
                .unknownParameter,
                "strategy '\(key)' has no parameter '\(option)'; it accepts \((entry.parameters + entry.options).joined(separator: ", "))"
            )
        }
        return try entry.build(
            Arguments(strategy: key, given: parameters, options: options, model: model, seed: seed))
    }
}
