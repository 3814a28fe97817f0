import FedNN
import FedTensor

/// The client-side part of a federated algorithm: hooks the local trainer calls around each step.
///
/// Per round the trainer calls ``beginRound(global:)`` with the global weights it starts from, then
/// for every step ``adjustGradients(_:parameters:)`` after backward and before the optimizer step,
/// then ``endRound(parameters:steps:learningRate:)`` with its final weights.
///
/// ```swift
/// let rule = strategy.clientAlgorithm.makeRule(broadcast: received, state: kept)
/// rule.beginRound(global: model.parameters.values)
/// for batch in batches {
///     // forward, backward
///     rule.adjustGradients(model.parameters.gradients, parameters: model.parameters.values)
///     optimizer.step(model.parameters)
/// }
/// let output = rule.endRound(parameters: model.parameters.values, steps: k, learningRate: lr)
/// ```
public protocol ClientRule: AnyObject {
    /// Remembers what the round needs from the global weights the client starts from.
    func beginRound(global: UnsafeBufferPointer<Float>)
    /// Changes the gradients in place after backward and before the optimizer step.
    func adjustGradients(_ gradients: UnsafeMutableBufferPointer<Float>, parameters: UnsafeBufferPointer<Float>)
    /// Finishes the round after `steps` local steps at `learningRate`.
    func endRound(parameters: UnsafeBufferPointer<Float>, steps: Int, learningRate: Float) -> ClientRuleOutput
}

/// What a client rule adds to a round's result.
public struct ClientRuleOutput: Sendable, Equatable {
    /// Vectors uploaded with the model update, by name (SCAFFOLD: "control_delta"); they reach the
    /// strategy as ``ClientUpdate/vectors``.
    public var upload: [String: [Float]]
    /// The client's state for its next round, by name (SCAFFOLD: "control"); kept only if the
    /// server accepts the round's update.
    public var state: [String: [Float]]

    public init(upload: [String: [Float]] = [:], state: [String: [Float]] = [:]) {
        self.upload = upload
        self.state = state
    }

    /// Nothing uploaded, nothing kept.
    public static let none = ClientRuleOutput()
}

/// A client rule that runs the training step itself (FedImpro trains on real and synthetic
/// features at a cut): the trainer zeroes the gradients, calls ``step(model:images:labels:)``, then
/// applies the gradient hook and the optimizer as for any rule.
public protocol SteppingClientRule: ClientRule {
    /// Seeds the rule's random stream for one client's round (called before the first step).
    func prepare(seed: UInt64, stream: String)
    /// Forward and backward of one batch into the model's gradient buffer; returns the batch's
    /// mean loss and the rows classified correctly.
    func step(model: Model, images: Tensor, labels: [Int32]) throws -> (loss: Float, correct: Int)
}
