/// Federated averaging (McMahan et al. 2017, "Communication-Efficient Learning of Deep Networks from
/// Decentralized Data"): the sample-weighted mean of the client deltas, scaled by a server learning rate.
///
///     x ← x + η Σ_i p_i Δ_i,   p_i = n_i / Σ_j n_j
///
/// With η = 1 (the default) this is the paper's algorithm: the new model is the weighted mean of the
/// clients' models. The strategy is stateless.
public final class FedAvg: Strategy {
    public let name = "fedavg"
    /// η, the step taken along the averaged delta.
    public let serverLearningRate: Double
    /// FedAvg keeps no server state.
    public var state: [String: [Float]] { [:] }
    private let accumulator = DeltaAccumulator()

    /// FedAvg with server learning rate η (positive and finite).
    public init(serverLearningRate: Double = 1) {
        precondition(serverLearningRate.isFinite && serverLearningRate > 0, "server learning rate must be positive")
        self.serverLearningRate = serverLearningRate
    }

    public func restore(state: [String: [Float]], parameterCount: Int) throws {
        try StrategyError.checkRestorable(state, names: [], count: parameterCount, strategy: name)
    }

    public func aggregate(
        global: UnsafeMutableBufferPointer<Float>, updates: [ClientUpdate], context: AggregationContext
    ) throws {
        let count = global.count
        let eta = serverLearningRate
        try accumulator.sampleWeightedMeanDelta(updates, count: count) { range, mean in
            for (j, m) in zip(range, mean) { global[j] = Float(Double(global[j]) + eta * m) }
        }
    }
}
