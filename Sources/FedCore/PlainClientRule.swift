/// The client rule of FedAvg, FedAvgM, FedNova and FedOpt: local training is plain, nothing is adjusted.
public final class PlainClientRule: ClientRule {
    /// The no-op rule.
    public init() {}

    public func beginRound(global: UnsafeBufferPointer<Float>) {}

    public func adjustGradients(
        _ gradients: UnsafeMutableBufferPointer<Float>, parameters: UnsafeBufferPointer<Float>
    ) {}

    public func endRound(parameters: UnsafeBufferPointer<Float>, steps: Int, learningRate: Float) -> ClientRuleOutput {
        .none
    }
}
