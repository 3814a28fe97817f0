import FedTensor

/// How a parameter or buffer starts out.
public enum Initializer: Sendable, Hashable {
    case zeros
    case ones
    /// Uniform in `[-bound, bound]`.
    case uniform(bound: Float)
    /// Normal with mean 0.
    case normal(std: Float)

    /// PyTorch's default for `Linear` and `Conv2d` weights and biases:
    /// `kaiming_uniform_(a=√5)`, which is uniform in ±1/√fan_in.
    public static func pytorchDefault(fanIn: Int) -> Initializer {
        .uniform(bound: 1 / Float(fanIn).squareRoot())
    }

    /// Kaiming (He) normal for ReLU networks: std = √(2/fan_in).
    public static func kaimingNormal(fanIn: Int) -> Initializer {
        .normal(std: (2 / Float(fanIn)).squareRoot())
    }

    /// Xavier (Glorot) uniform: bound = √(6/(fan_in + fan_out)).
    public static func xavierUniform(fanIn: Int, fanOut: Int) -> Initializer {
        .uniform(bound: (6 / Float(fanIn + fanOut)).squareRoot())
    }

    func fill(_ buffer: UnsafeMutableBufferPointer<Float>, rng: inout SeededRNG) {
        switch self {
        case .zeros: buffer.update(repeating: 0)
        case .ones: buffer.update(repeating: 1)
        case .uniform(let b): for i in buffer.indices { buffer[i] = rng.nextUniform(-b, b) }
        case .normal(let s): for i in buffer.indices { buffer[i] = s * rng.nextNormal() }
        }
    }
}

/// A tensor a layer declares: its local name (`weight`), shape and initial values.
public struct ParameterSpec: Sendable {
    public let name: String
    public let shape: Shape
    public let initializer: Initializer

    public init(_ name: String, _ shape: Shape, _ initializer: Initializer) {
        self.name = name
        self.shape = shape
        self.initializer = initializer
    }
}

/// Where a layer's declared tensors live once the model has allocated its `ParameterSet`:
/// one pointer per declared spec, in declaration order.
public struct ParameterBinding {
    public let values: [UnsafeMutablePointer<Float>]
    public let gradients: [UnsafeMutablePointer<Float>]
    public init(values: [UnsafeMutablePointer<Float>], gradients: [UnsafeMutablePointer<Float>]) {
        self.values = values
        self.gradients = gradients
    }
}

/// A differentiable building block with an explicit forward and backward pass.
///
/// `forward` caches what `backward` needs when `training` is true; `backward` takes the
/// gradient of the loss with respect to the output, **adds** parameter gradients into the
/// model's gradient buffer, drops its caches and returns the gradient with respect to the input.
/// Tensors a layer returns are its own reusable buffers: a training step allocates nothing once
/// shapes settle, as long as callers drop the tensors they were handed before the next step.
public protocol Layer: AnyObject {
    /// Trainable tensors this layer owns directly (not its children's).
    var parameterSpecs: [ParameterSpec] { get }
    /// Non-trainable state saved with the model (BatchNorm running statistics).
    var bufferSpecs: [ParameterSpec] { get }
    /// Sub-layers with their `state_dict` names; an empty name adds no path component.
    var children: [(name: String, layer: any Layer)] { get }
    /// Called once by `Model` with the storage of `parameterSpecs` and `bufferSpecs`.
    func bind(parameters: ParameterBinding, buffers: ParameterBinding)
    /// Called once by `Model` with this layer's dotted path and the model's seed, for layers
    /// that draw random numbers while running (dropout).
    func prepare(path: String, seed: UInt64)
    /// The output shape for an input shape (batch dimension first), or a thrown error naming
    /// what does not fit.
    func outputShape(for input: Shape) throws -> Shape
    func forward(_ input: Tensor, training: Bool) -> Tensor
    /// - Parameter needsInputGradient: false for the first layers of a network, whose input
    ///   gradient nobody reads; the layer may then skip computing it and return an empty tensor.
    func backward(_ gradOutput: Tensor, needsInputGradient: Bool) -> Tensor
    /// A frozen layer keeps its parameters: it computes no parameter gradients and optimizers skip it.
    var isFrozen: Bool { get set }
    /// Forgets what the last training `forward` kept for `backward`, as `backward` would. A container
    /// calls it on the layers whose backward pass it skips (a frozen prefix), so their caches do not
    /// pin the buffers the next step would reuse.
    func dropTrainingCache()
}

extension Layer {
    public var parameterSpecs: [ParameterSpec] { [] }
    public var bufferSpecs: [ParameterSpec] { [] }
    public var children: [(name: String, layer: any Layer)] { [] }
    public func bind(parameters: ParameterBinding, buffers: ParameterBinding) {}
    public func prepare(path: String, seed: UInt64) {}
    public var isFrozen: Bool {
        get { false }
        set {}
    }
    /// Containers forward the call to their children; layers that cache implement it.
    public func dropTrainingCache() {
        for child in children { child.layer.dropTrainingCache() }
    }

    /// Whether this layer or any descendant has parameters that are not frozen.
    public var hasTrainableParameters: Bool {
        (!isFrozen && !parameterSpecs.isEmpty) || children.contains { $0.layer.hasTrainableParameters }
    }

    /// Freezes or unfreezes this layer and all its descendants.
    public func setFrozen(_ frozen: Bool) {
        isFrozen = frozen
        for child in children { child.layer.setFrozen(frozen) }
    }
}

/// An empty tensor returned by `backward` when the input gradient was not requested.
public let noGradient = Tensor(shape: [0])
