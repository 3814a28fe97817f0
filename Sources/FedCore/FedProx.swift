/// FedProx (Li et al. 2020, "Federated Optimization in Heterogeneous Networks"): on the server exactly
/// ``FedAvg`` (x ← x + η Σ_i p_i Δ_i, p_i = n_i / Σ_j n_j); the algorithm lives on the clients, which
/// add the proximal term (μ/2)‖w − x‖² to their loss — see ``ProximalClientRule``.
///
/// The strategy's client rule carries μ to the clients.
public final class FedProx: Strategy {
    public let name = "fedprox"
    /// μ, the weight of the clients' proximal term.
    public let mu: Double
    /// η, the step taken along the averaged delta.
    public var serverLearningRate: Double { average.serverLearningRate }
    public var state: [String: [Float]] { [:] }
    private let average: FedAvg

    /// FedProx with proximal weight μ ≥ 0 and server learning rate η.
    public init(mu: Double = 0.01, serverLearningRate: Double = 1) {
        precondition(mu.isFinite && mu >= 0, "mu must be non-negative")
        self.mu = mu
        average = FedAvg(serverLearningRate: serverLearningRate)
    }

    public var clientAlgorithm: any ClientAlgorithm { ProximalClientAlgorithm(mu: mu) }

    public func restore(state: [String: [Float]], parameterCount: Int) throws {
        try StrategyError.checkRestorable(state, names: [], count: parameterCount, strategy: name)
    }

    public func aggregate(
        global: UnsafeMutableBufferPointer<Float>, updates: [ClientUpdate], context: AggregationContext
    ) throws {
        try average.aggregate(global: global, updates: updates, context: context)
    }
}
