import FedTensor

/// Updates a model's parameters from their gradients.
public protocol Optimizer: AnyObject {
    var learningRate: Float { get set }
    /// Applies one update to the trainable ranges of `parameters` using `parameters.gradients`.
    func step(_ parameters: ParameterSet)
    /// Forgets momentum and moment estimates (e.g. when a federated client starts a new round).
    func reset()
}
