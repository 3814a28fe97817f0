import FedTensor

/// Layers applied one after another. Children are named as in a PyTorch module (`conv1`, or
/// `0`, `1`, … for an `nn.Sequential`), which makes the parameter names of the `state_dict`.
public final class Sequential: Layer {
    public let layers: [(name: String, layer: any Layer)]
    public var isFrozen = false {
        didSet { for child in layers { child.layer.isFrozen = isFrozen } }
    }
    /// Per layer: whether some earlier layer has trainable parameters (then the input gradient
    /// of this layer is needed even when the caller does not ask for its own).
    private var trainableBefore: [Bool] = []

    /// Named children.
    public init(_ layers: [(name: String, layer: any Layer)]) {
        self.layers = layers
    }

    /// Children named `0`, `1`, … like `torch.nn.Sequential`.
    public convenience init(_ layers: [any Layer]) {
        self.init(layers.enumerated().map { (String($0.offset), $0.element) })
    }

    public var children: [(name: String, layer: any Layer)] { layers }

    public func outputShape(for input: Shape) throws -> Shape {
        var shape = input
        for (name, layer) in layers {
            do {
                shape = try layer.outputShape(for: shape)
            } catch let error as ModelError {
                throw ModelError(error.code, "layer '\(name)': \(error.message)")
            }
        }
        return shape
    }

    public func forward(_ input: Tensor, training: Bool) -> Tensor {
        var x = input
        for (_, layer) in layers { x = layer.forward(x, training: training) }
        return x
    }

    public func backward(_ gradOutput: Tensor, needsInputGradient: Bool) -> Tensor {
        // Recomputed each pass because freezing can change between steps; it is a few flags.
        trainableBefore = []
        var any = false
        for (_, layer) in layers {
            trainableBefore.append(any)
            any = any || layer.hasTrainableParameters
        }
        var g = gradOutput
        for i in stride(from: layers.count - 1, through: 0, by: -1) {
            // Nothing from here down is trained and nobody reads the input gradient: stop (a frozen
            // prefix, such as FuseFL's fused blocks, costs no backward pass at all).
            if !needsInputGradient && !trainableBefore[i] && !layers[i].layer.hasTrainableParameters {
                for j in 0...i { layers[j].layer.dropTrainingCache() }
                return noGradient
            }
            g = layers[i].layer.backward(g, needsInputGradient: needsInputGradient || trainableBefore[i])
        }
        return g
    }
}
