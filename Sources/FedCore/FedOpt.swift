/// Adaptive federated optimisation (Reddi et al. 2021, "Adaptive Federated Optimization", Algorithm 2):
/// the averaged client delta is used as a pseudo-gradient for Adam, Yogi or Adagrad on the server.
///
///     Δ̄ = Σ_i p_i Δ_i,   p_i = n_i / Σ_j n_j
///     m ← β1 m + (1 − β1) Δ̄
///     v ← v + Δ̄²                              (FedAdagrad)
///     v ← β2 v + (1 − β2) Δ̄²                  (FedAdam)
///     v ← v − (1 − β2) Δ̄² sign(v − Δ̄²)        (FedYogi, sign(0) = 0)
///     x ← x + η m / (√v + τ)
///
/// m starts at 0 and v at τ² (the paper's v₋₁ ≥ τ²; Flower starts v at 0). There is no bias
/// correction (newer Flower versions bias-correct η for FedAdam; this follows the paper).
/// Defaults are Flower's: FedAdam η = 0.1, β1 = 0.9, β2 = 0.99, τ = 1e-9; FedYogi η = 0.01,
/// β1 = 0.9, β2 = 0.99, τ = 1e-3; FedAdagrad η = 0.1, β1 = 0 (so m = Δ̄), τ = 1e-9 (β2 unused).
/// State: "m" and "v". Moments are stored as `Float`; each round computes in `Double` from them.
public final class FedOpt: Strategy {
    /// Which adaptive optimiser the server runs.
    public enum Variant: String, Sendable, CaseIterable {
        case adam = "fedadam"
        case yogi = "fedyogi"
        case adagrad = "fedadagrad"
    }

    /// The optimiser.
    public let variant: Variant
    /// η, the server learning rate.
    public let serverLearningRate: Double
    /// β1, the decay of the first moment.
    public let beta1: Double
    /// β2, the decay of the second moment (unused by Adagrad).
    public let beta2: Double
    /// τ, the adaptivity: added to √v and the square root of v's initial value.
    public let tau: Double
    /// First moment m; empty before the first round.
    public private(set) var firstMoment: [Float] = []
    /// Second moment v; empty before the first round.
    public private(set) var secondMoment: [Float] = []
    private let accumulator = DeltaAccumulator()

    /// "fedadam", "fedyogi" or "fedadagrad".
    public var name: String { variant.rawValue }
    public var state: [String: [Float]] { firstMoment.isEmpty ? [:] : ["m": firstMoment, "v": secondMoment] }

    /// The `variant` optimiser; parameters left nil take that variant's Flower default.
    public init(
        _ variant: Variant, serverLearningRate: Double? = nil, beta1: Double? = nil, beta2: Double? = nil,
        tau: Double? = nil
    ) {
        let defaults = Self.defaults(variant)
        self.variant = variant
        self.serverLearningRate = serverLearningRate ?? defaults.serverLearningRate
        self.beta1 = beta1 ?? defaults.beta1
        self.beta2 = beta2 ?? defaults.beta2
        self.tau = tau ?? defaults.tau
        precondition(
            self.serverLearningRate.isFinite && self.serverLearningRate > 0, "server learning rate must be positive")
        precondition(self.beta1 >= 0 && self.beta1 < 1, "beta1 must be in [0, 1)")
        precondition(self.beta2 >= 0 && self.beta2 < 1, "beta2 must be in [0, 1)")
        precondition(self.tau.isFinite && self.tau > 0, "tau must be positive")
    }

    /// Flower's default (η, β1, β2, τ) for `variant`.
    public static func defaults(
        _ variant: Variant
    ) -> (serverLearningRate: Double, beta1: Double, beta2: Double, tau: Double) {
        switch variant {
        case .adam: (0.1, 0.9, 0.99, 1e-9)
        case .yogi: (0.01, 0.9, 0.99, 1e-3)
        case .adagrad: (0.1, 0, 0.99, 1e-9)
        }
    }

    public func restore(state: [String: [Float]], parameterCount: Int) throws {
        try StrategyError.checkRestorable(state, names: ["m", "v"], count: parameterCount, strategy: name)
        firstMoment = state["m"] ?? []
        secondMoment = state["v"] ?? []
    }

    public func aggregate(
        global: UnsafeMutableBufferPointer<Float>, updates: [ClientUpdate], context: AggregationContext
    ) throws {
        let count = global.count
        guard firstMoment.isEmpty || firstMoment.count == count else {
            throw StrategyError(
                .stateMismatch, "\(name): moments have \(firstMoment.count) elements, the model has \(count)")
        }
        // The moments start at (0, τ²); a first aggregation that fails leaves them unset.
        let fresh = firstMoment.isEmpty
        if fresh {
            firstMoment = [Float](repeating: 0, count: count)
            secondMoment = [Float](repeating: Float(tau * tau), count: count)
        }
        do {
            try step(global: global, updates: updates)
        } catch {
            if fresh { (firstMoment, secondMoment) = ([], []) }
            throw error
        }
    }

    /// One server step along the updates' sample-weighted mean delta, tile by tile.
    private func step(global: UnsafeMutableBufferPointer<Float>, updates: [ClientUpdate]) throws {
        let count = global.count
        let (eta, b1, b2, tau, variant) = (serverLearningRate, beta1, beta2, tau, variant)
        try firstMoment.withUnsafeMutableBufferPointer { m in
            try secondMoment.withUnsafeMutableBufferPointer { v in
                try accumulator.sampleWeightedMeanDelta(updates, count: count) { range, mean in
                    for (j, d) in zip(range, mean) {
                        let d2 = d * d
                        let mj = Float(b1 * Double(m[j]) + (1 - b1) * d)
                        let old = Double(v[j])
                        let vj: Float
                        switch variant {
                        case .adagrad: vj = Float(old + d2)
                        case .adam: vj = Float(b2 * old + (1 - b2) * d2)
                        case .yogi:
                            let difference = old - d2
                            let sign: Double = difference > 0 ? 1 : (difference < 0 ? -1 : 0)
                            vj = Float(old - (1 - b2) * d2 * sign)
                        }
                        m[j] = mj
                        v[j] = vj
                        global[j] = Float(Double(global[j]) + eta * Double(mj) / (Double(vj).squareRoot() + tau))
                    }
                }
            }
        }
    }
}
