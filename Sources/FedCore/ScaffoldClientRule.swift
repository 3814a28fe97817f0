/// SCAFFOLD's client side: each client's rule starts from the broadcast server control c and the
/// client's kept control c_i (both zero when absent).
public struct ScaffoldClientAlgorithm: ClientAlgorithm {
    public init() {}
    public func makeRule(broadcast: [String: [Float]], state: [String: [Float]]) -> any ClientRule {
        ScaffoldClientRule(
            serverControl: broadcast[Scaffold.controlName] ?? [], clientControl: state[Scaffold.controlName] ?? [])
    }
}

/// SCAFFOLD's client rule (Karimireddy et al. 2020, Algorithm 1 with option II):
///
///     g ← g + c − c_i                                  every step
///     c_i⁺ = c_i − c + (x − y_i) / (K η_l)              at the end of the round
///     Δc_i = c_i⁺ − c_i
///
/// x is the global model the round started from, y_i the client's final model, K the number of local
/// steps and η_l the local learning rate. Option II assumes plain local SGD (no momentum or weight decay).
///
/// The client variate c_i is the client's state between its rounds: ``Scaffold`` builds the rule from
/// the broadcast c and the kept c_i, and ``endRound(parameters:steps:learningRate:)`` uploads Δc_i as
/// "control_delta" and keeps c_i⁺ as "control". Empty arrays mean zero.
public final class ScaffoldClientRule: ClientRule {
    /// c, the server control variate for this round.
    public var serverControl: [Float]
    /// c_i, the client control variate; replaced by c_i⁺ at the end of the round.
    public var clientControl: [Float]
    private var start: [Float] = []
    private var correction: [Float] = []

    /// The rule for a client with variate c_i in a round whose server variate is c.
    public init(serverControl: [Float] = [], clientControl: [Float] = []) {
        self.serverControl = serverControl
        self.clientControl = clientControl
    }

    public func beginRound(global: UnsafeBufferPointer<Float>) {
        let count = global.count
        if serverControl.isEmpty { serverControl = [Float](repeating: 0, count: count) }
        if clientControl.isEmpty { clientControl = [Float](repeating: 0, count: count) }
        precondition(
            serverControl.count == count && clientControl.count == count,
            "control variates have \(serverControl.count) and \(clientControl.count) elements, the model has \(count)")
        start = Array(global)
        correction = [Float](repeating: 0, count: count)
        serverControl.withUnsafeBufferPointer { c in
            clientControl.withUnsafeBufferPointer { ci in
                correction.withUnsafeMutableBufferPointer { out in
                    for j in 0..<count { out[j] = c[j] - ci[j] }
                }
            }
        }
    }

    public func adjustGradients(
        _ gradients: UnsafeMutableBufferPointer<Float>, parameters: UnsafeBufferPointer<Float>
    ) {
        precondition(gradients.count == correction.count, "beginRound must see the same number of parameters")
        correction.withUnsafeBufferPointer { k in
            for j in 0..<k.count { gradients[j] += k[j] }
        }
    }

    /// Replaces ``clientControl`` by c_i⁺; uploads Δc_i and keeps c_i⁺. After zero steps c_i is kept
    /// and Δc_i is zero.
    public func endRound(parameters: UnsafeBufferPointer<Float>, steps: Int, learningRate: Float) -> ClientRuleOutput {
        let delta = controlStep(parameters: parameters, steps: steps, learningRate: learningRate)
        return ClientRuleOutput(
            upload: [Scaffold.controlDeltaName: delta], state: [Scaffold.controlName: clientControl])
    }

    private func controlStep(parameters: UnsafeBufferPointer<Float>, steps: Int, learningRate: Float) -> [Float] {
        let count = start.count
        precondition(parameters.count == count, "beginRound must see the same number of parameters")
        guard steps > 0 else { return [Float](repeating: 0, count: count) }
        precondition(learningRate > 0, "SCAFFOLD's control update needs a positive learning rate")
        let scale = 1 / (Double(steps) * Double(learningRate))
        var delta = [Float](repeating: 0, count: count)
        start.withUnsafeBufferPointer { x in
            serverControl.withUnsafeBufferPointer { c in
                clientControl.withUnsafeMutableBufferPointer { ci in
                    delta.withUnsafeMutableBufferPointer { out in
                        for j in 0..<count {
                            let old = ci[j]
                            let new = Float(Double(old) - Double(c[j]) + Double(x[j] - parameters[j]) * scale)
                            ci[j] = new
                            out[j] = new - old
                        }
                    }
                }
            }
        }
        return delta
    }
}
