/// The client-side part of a federated algorithm: hooks the local trainer calls around each step.
///
/// Per round the trainer calls ``beginRound(global:)`` with the global weights it starts from, then
/// for every step ``adjustGradients(_:parameters:)`` after backward and before the optimizer step,
/// then ``endRound(parameters:steps:learningRate:)`` with its final weights.
///
/// ```swift
/// rule.beginRound(global: model.parameters.values)
/// for batch in batches {
///     // forward, backward
///     rule.adjustGradients(model.parameters.gradients, parameters: model.parameters.values)
///     optimizer.step(model.parameters)
/// }
/// let controlDelta = rule.endRound(parameters: model.parameters.values, steps: k, learningRate: lr)
/// ```
public protocol ClientRule: AnyObject {
    /// Remembers what the round needs from the global weights the client starts from.
    func beginRound(global: UnsafeBufferPointer<Float>)
    /// Changes the gradients in place after backward and before the optimizer step.
    func adjustGradients(_ gradients: UnsafeMutableBufferPointer<Float>, parameters: UnsafeBufferPointer<Float>)
    /// Finishes the round after `steps` local steps at `learningRate`; returns SCAFFOLD's Δc_i, or nil.
    func endRound(parameters: UnsafeBufferPointer<Float>, steps: Int, learningRate: Float) -> [Float]?
}
