/// FedDyn (Acar et al. 2021, "Federated Learning Based on Dynamic Regularization", Algorithm 1):
/// each client's local objective gains a linear term and a proximal term that make its stationary
/// points consistent with the global one, and the server keeps h, a running sum of the
/// participants' drift.
///
/// Client k in round t, from the global model x (``FedDynClientRule``):
///
///     minimise L_k(θ) − ⟨g_k, θ⟩ + (α/2)‖θ − x‖²     (gradient: ∇L_k(θ) − g_k + α(θ − x))
///     g_k ← g_k − α(θ_k − x)                          at the end of the round
///
/// Server, with the participants P's deltas Δ_k = θ_k − x and N clients in the federation:
///
///     h ← h − α (1/N) Σ_{k∈P} Δ_k
///     x ← x + (1/|P|) Σ_{k∈P} Δ_k − h/α              (= mean_k θ_k − h/α)
///
/// Means are unweighted, as in the paper. g_k (the gradient of L_k at the client's last model, by
/// the first-order condition) is the client's state "linear", zero before its first round; h is
/// the server's state "h", zero before the first round. Nothing extra travels: the update is the
/// model delta alone.
public final class FedDyn: Strategy {
    public let name = "feddyn"
    /// α, the weight of the dynamic regulariser.
    public let alpha: Double
    /// h, the server's drift correction; empty (meaning zero) before the first round.
    public private(set) var h: [Float] = []
    public var state: [String: [Float]] { h.isEmpty ? [:] : [Self.serverStateName: h] }
    private let accumulator = DeltaAccumulator()

    /// The name of the server state h and of the client's linear term g_k.
    public static let serverStateName = "h"
    public static let clientStateName = "linear"

    /// FedDyn with regularisation weight α > 0.
    public init(alpha: Double = 0.01) {
        precondition(alpha.isFinite && alpha > 0, "alpha must be positive")
        self.alpha = alpha
    }

    public var clientAlgorithm: any ClientAlgorithm { FedDynClientAlgorithm(alpha: alpha) }

    public func restore(state: [String: [Float]], parameterCount: Int) throws {
        try StrategyError.checkRestorable(state, names: [Self.serverStateName], count: parameterCount, strategy: name)
        h = state[Self.serverStateName] ?? []
    }

    public func aggregate(
        global: UnsafeMutableBufferPointer<Float>, updates: [ClientUpdate], context: AggregationContext
    ) throws {
        let count = global.count
        guard h.isEmpty || h.count == count else {
            throw StrategyError(.stateMismatch, "feddyn: h has \(h.count) elements, the model has \(count)")
        }
        try ClientUpdate.validate(updates, parameterCount: count)
        guard context.totalClients >= updates.count else {
            throw StrategyError(
                .invalidContext,
                "feddyn: \(updates.count) updates but only \(context.totalClients) clients in the federation")
        }
        let participants = Double(updates.count)
        let mean = DeltaAccumulator.Term(
            vector: \.delta, weights: Array(repeating: 1 / participants, count: updates.count), what: "delta")
        // α (1/N) Σ Δ_k = α (|P|/N) · mean Δ
        let drift = alpha * participants / Double(context.totalClients)
        let inverseAlpha = 1 / alpha
        let fresh = h.isEmpty
        if fresh { h = [Float](repeating: 0, count: count) }
        do {
            try h.withUnsafeMutableBufferPointer { h in
                try accumulator.weightedSums(updates, [mean], count: count) { range, sums in
                    for (i, j) in range.enumerated() {
                        let hj = Float(Double(h[j]) - drift * sums[0][i])
                        h[j] = hj
                        global[j] = Float(Double(global[j]) + sums[0][i] - inverseAlpha * Double(hj))
                    }
                }
            }
        } catch {
            if fresh { h = [] }
            throw error
        }
    }
}

/// FedDyn's client side: every client's rule has the same α and starts from the client's kept g_k.
public struct FedDynClientAlgorithm: ClientAlgorithm {
    public let alpha: Double
    public init(alpha: Double) { self.alpha = alpha }
    public func makeRule(broadcast: [String: [Float]], state: [String: [Float]]) -> any ClientRule {
        FedDynClientRule(alpha: Float(alpha), linear: state[FedDyn.clientStateName] ?? [])
    }
}

/// FedDyn's client rule (``FedDyn``): every step
///
///     g ← g − g_k + α(θ − x)
///
/// and at the end of the round g_k ← g_k − α(θ − x), kept as the state "linear" (the server keeps
/// it only if it accepts the update). An empty g_k means zero.
public final class FedDynClientRule: ClientRule {
    /// α, the weight of the dynamic regulariser.
    public let alpha: Float
    /// g_k, the client's linear term; replaced at the end of the round.
    public private(set) var linear: [Float]
    private var anchor: [Float] = []

    /// The rule for a client with linear term g_k (empty: zero) and weight α > 0.
    public init(alpha: Float, linear: [Float] = []) {
        precondition(alpha.isFinite && alpha > 0, "alpha must be positive")
        self.alpha = alpha
        self.linear = linear
    }

    public func beginRound(global: UnsafeBufferPointer<Float>) {
        if linear.isEmpty { linear = [Float](repeating: 0, count: global.count) }
        precondition(
            linear.count == global.count, "the linear term has \(linear.count) elements, the model has \(global.count)")
        anchor = Array(global)
    }

    public func adjustGradients(
        _ gradients: UnsafeMutableBufferPointer<Float>, parameters: UnsafeBufferPointer<Float>
    ) {
        precondition(
            gradients.count == anchor.count && parameters.count == anchor.count,
            "beginRound must see the same number of parameters as adjustGradients")
        let alpha = alpha
        anchor.withUnsafeBufferPointer { x in
            linear.withUnsafeBufferPointer { g in
                for j in 0..<x.count { gradients[j] += alpha * (parameters[j] - x[j]) - g[j] }
            }
        }
    }

    public func endRound(parameters: UnsafeBufferPointer<Float>, steps: Int, learningRate: Float) -> ClientRuleOutput {
        precondition(parameters.count == anchor.count, "beginRound must see the same number of parameters")
        let alpha = alpha
        anchor.withUnsafeBufferPointer { x in
            linear.withUnsafeMutableBufferPointer { g in
                for j in 0..<x.count { g[j] -= alpha * (parameters[j] - x[j]) }
            }
        }
        return ClientRuleOutput(state: [FedDyn.clientStateName: linear])
    }
}
