/// FedProx's client side: every client's rule has the same μ.
public struct ProximalClientAlgorithm: ClientAlgorithm {
    public let mu: Double
    public init(mu: Double) { self.mu = mu }
    public func makeRule(broadcast: [String: [Float]], state: [String: [Float]]) -> any ClientRule {
        ProximalClientRule(mu: Float(mu))
    }
}

/// FedProx's client rule (Li et al. 2020): the local loss gains the proximal term (μ/2)‖w − w_global‖²,
/// so every gradient gains its derivative:
///
///     g ← g + μ (w − w_global)
public final class ProximalClientRule: ClientRule {
    /// μ, the weight of the proximal term.
    public let mu: Float
    private var anchor: [Float] = []

    /// The rule with proximal weight μ ≥ 0.
    public init(mu: Float) {
        precondition(mu.isFinite && mu >= 0, "mu must be non-negative")
        self.mu = mu
    }

    public func beginRound(global: UnsafeBufferPointer<Float>) {
        if anchor.count == global.count {
            anchor.withUnsafeMutableBufferPointer { _ = $0.update(fromContentsOf: global) }
        } else {
            anchor = Array(global)
        }
    }

    public func adjustGradients(
        _ gradients: UnsafeMutableBufferPointer<Float>, parameters: UnsafeBufferPointer<Float>
    ) {
        precondition(
            gradients.count == anchor.count && parameters.count == anchor.count,
            "beginRound must see the same number of parameters as adjustGradients")
        let mu = mu
        anchor.withUnsafeBufferPointer { x in
            for j in 0..<x.count { gradients[j] += mu * (parameters[j] - x[j]) }
        }
    }

    public func endRound(parameters: UnsafeBufferPointer<Float>, steps: Int, learningRate: Float) -> ClientRuleOutput {
        .none
    }
}
