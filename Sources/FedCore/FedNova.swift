/// FedNova (Wang et al. 2020, "Tackling the Objective Inconsistency Problem in Heterogeneous Federated
/// Optimization"): normalises each client's delta by its amount of local work before averaging, so
/// clients that took more steps do not pull the model towards their own optimum.
///
/// For local SGD with momentum ρ and τ_i local steps:
///
///     a_i = τ_i                                    if ρ = 0
///     a_i = [τ_i − ρ(1 − ρ^τ_i)/(1 − ρ)] / (1 − ρ)  otherwise
///     d_i = Δ_i / a_i,   p_i = n_i / Σ_j n_j,   τ_eff = Σ_i p_i a_i
///     x ← x + η τ_eff Σ_i p_i d_i
///
/// η is a server learning rate (default 1, the paper's rule). With equal τ_i this is ``FedAvg``.
/// Every update must have `localSteps` > 0. Stateless.
public final class FedNova: Strategy {
    public let name = "fednova"
    /// ρ, the momentum of the clients' local SGD.
    public let localMomentum: Double
    /// η, the step taken along the normalised average.
    public let serverLearningRate: Double
    public var state: [String: [Float]] { [:] }
    private let accumulator = DeltaAccumulator()

    /// FedNova for clients running SGD with momentum ρ in [0, 1).
    public init(localMomentum: Double = 0, serverLearningRate: Double = 1) {
        precondition(localMomentum >= 0 && localMomentum < 1, "local momentum must be in [0, 1)")
        precondition(serverLearningRate.isFinite && serverLearningRate > 0, "server learning rate must be positive")
        self.localMomentum = localMomentum
        self.serverLearningRate = serverLearningRate
    }

    /// a_i, the norm of the local aggregation vector for `steps` steps of SGD with momentum ρ.
    public static func normalizer(steps: Int, momentum rho: Double) -> Double {
        let tau = Double(steps)
        guard rho != 0 else { return tau }
        var power = 1.0  // ρ^τ_i by repeated multiplication: exact for small τ_i, no libm needed
        for _ in 0..<steps { power *= rho }
        return (tau - rho * (1 - power) / (1 - rho)) / (1 - rho)
    }

    public func restore(state: [String: [Float]], parameterCount: Int) throws {
        try StrategyError.checkRestorable(state, names: [], count: parameterCount, strategy: name)
    }

    public func aggregate(
        global: UnsafeMutableBufferPointer<Float>, updates: [ClientUpdate], context: AggregationContext
    ) throws {
        let count = global.count
        try ClientUpdate.validate(updates, parameterCount: count, requireLocalSteps: true)
        let p = ClientUpdate.sampleWeights(updates)
        let a = updates.map { Self.normalizer(steps: $0.localSteps, momentum: localMomentum) }
        var tauEffective = 0.0
        for i in updates.indices { tauEffective += p[i] * a[i] }
        // x + η τ_eff Σ p_i Δ_i / a_i: one weighted sum with weights η τ_eff p_i / a_i.
        let eta = serverLearningRate
        let weights = updates.indices.map { eta * tauEffective * p[$0] / a[$0] }
        let term = DeltaAccumulator.Term(vector: \.delta, weights: weights, what: "delta")
        try accumulator.weightedSums(updates, [term], count: count) { range, sums in
            for (j, s) in zip(range, sums[0]) { global[j] = Float(Double(global[j]) + s) }
        }
    }
}
