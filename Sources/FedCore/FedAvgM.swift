/// Federated averaging with server momentum (Hsu et al. 2019, "Measuring the Effects of Non-Identical
/// Data Distribution for Federated Visual Classification"):
///
///     Δ̄ = Σ_i p_i Δ_i,   p_i = n_i / Σ_j n_j
///     v ← β v + Δ̄        (v = 0 before the first round)
///     x ← x + η v
///
/// State: "momentum" (v).
public final class FedAvgM: Strategy {
    public let name = "fedavgm"
    /// η, the step taken along the momentum.
    public let serverLearningRate: Double
    /// β, the decay of the server momentum.
    public let momentum: Double
    /// v, empty before the first round.
    public private(set) var velocity: [Float] = []
    public var state: [String: [Float]] { velocity.isEmpty ? [:] : ["momentum": velocity] }
    private let accumulator = DeltaAccumulator()

    /// FedAvgM with server learning rate η > 0 and momentum β in [0, 1).
    public init(serverLearningRate: Double = 1, momentum: Double = 0.9) {
        precondition(serverLearningRate.isFinite && serverLearningRate > 0, "server learning rate must be positive")
        precondition(momentum >= 0 && momentum < 1, "momentum must be in [0, 1)")
        self.serverLearningRate = serverLearningRate
        self.momentum = momentum
    }

    public func restore(state: [String: [Float]], parameterCount: Int) throws {
        try StrategyError.checkRestorable(state, names: ["momentum"], count: parameterCount, strategy: name)
        velocity = state["momentum"] ?? []
    }

    public func aggregate(
        global: UnsafeMutableBufferPointer<Float>, updates: [ClientUpdate], context: AggregationContext
    ) throws {
        let count = global.count
        guard velocity.isEmpty || velocity.count == count else {
            throw StrategyError(
                .stateMismatch, "fedavgm: momentum has \(velocity.count) elements, the model has \(count)")
        }
        // The momentum starts at zero; a first aggregation that fails leaves it unset.
        let fresh = velocity.isEmpty
        if fresh { velocity = [Float](repeating: 0, count: count) }
        let (eta, beta) = (serverLearningRate, momentum)
        do {
            try velocity.withUnsafeMutableBufferPointer { v in
                try accumulator.sampleWeightedMeanDelta(updates, count: count) { range, mean in
                    for (j, m) in zip(range, mean) {
                        let vj = Float(beta * Double(v[j]) + m)
                        v[j] = vj
                        global[j] = Float(Double(global[j]) + eta * Double(vj))
                    }
                }
            }
        } catch {
            if fresh { velocity = [] }
            throw error
        }
    }
}
