/// Builds strategies from the names and parameter keys used in experiment configs.
///
/// ```swift
/// let strategy = try StrategyFactory.makeStrategy(name: "fedyogi", parameters: ["server_learning_rate": 0.03])
/// ```
public enum StrategyFactory {
    /// The accepted strategy names, in a stable order.
    public static let strategyNames = [
        "fedavg", "fedavgm", "fedprox", "scaffold", "fednova", "fedadam", "fedyogi", "fedadagrad",
    ]

    /// The parameter keys each strategy accepts; a key left out takes the strategy's default.
    public static let parameterKeys: [String: [String]] = [
        "fedavg": ["server_learning_rate"],
        "fedavgm": ["server_learning_rate", "momentum"],
        "fedprox": ["server_learning_rate", "mu"],
        "scaffold": ["server_learning_rate"],
        "fednova": ["server_learning_rate", "local_momentum"],
        "fedadam": ["server_learning_rate", "beta1", "beta2", "tau"],
        "fedyogi": ["server_learning_rate", "beta1", "beta2", "tau"],
        "fedadagrad": ["server_learning_rate", "beta1", "tau"],
    ]

    /// The strategy called `name` (case-insensitive) with `parameters` overriding its defaults.
    /// - Throws: ``StrategyError`` naming the accepted strategies for an unknown name, the accepted keys for
    ///   an unknown key, and the accepted range for an out-of-range value.
    public static func makeStrategy(name: String, parameters: [String: Double] = [:]) throws -> any Strategy {
        let key = name.lowercased()
        guard let allowed = parameterKeys[key] else {
            throw StrategyError(
                .unknownStrategy,
                "unknown strategy '\(name)'; choose one of \(strategyNames.joined(separator: ", "))")
        }
        for parameter in parameters.keys.sorted() where !allowed.contains(parameter) {
            throw StrategyError(
                .unknownParameter,
                "strategy '\(key)' has no parameter '\(parameter)'; it accepts \(allowed.joined(separator: ", "))")
        }
        let eta = try value(parameters, "server_learning_rate", of: key, positive: true)
        switch key {
        case "fedavg":
            return FedAvg(serverLearningRate: eta ?? 1)
        case "fedavgm":
            let momentum = try value(parameters, "momentum", of: key, belowOne: true)
            return FedAvgM(serverLearningRate: eta ?? 1, momentum: momentum ?? 0.9)
        case "fedprox":
            let mu = try value(parameters, "mu", of: key)
            return FedProx(mu: mu ?? 0.01, serverLearningRate: eta ?? 1)
        case "scaffold":
            return Scaffold(serverLearningRate: eta ?? 1)
        case "fednova":
            let rho = try value(parameters, "local_momentum", of: key, belowOne: true)
            return FedNova(localMomentum: rho ?? 0, serverLearningRate: eta ?? 1)
        default:
            let variant = FedOpt.Variant(rawValue: key)!
            return FedOpt(
                variant, serverLearningRate: eta, beta1: try value(parameters, "beta1", of: key, belowOne: true),
                beta2: try value(parameters, "beta2", of: key, belowOne: true),
                tau: try value(parameters, "tau", of: key, positive: true))
        }
    }

    /// `parameters[key]` after checking it is finite, non-negative, and positive or below 1 if asked.
    private static func value(
        _ parameters: [String: Double], _ key: String, of strategy: String, positive: Bool = false,
        belowOne: Bool = false
    ) throws -> Double? {
        guard let value = parameters[key] else { return nil }
        let range = belowOne ? "in [0, 1)" : positive ? "positive" : "non-negative"
        guard value.isFinite, value >= 0, !positive || value > 0, !belowOne || value < 1 else {
            throw StrategyError(.invalidParameter, "strategy '\(strategy)': \(key) is \(value), must be \(range)")
        }
        return value
    }
}
