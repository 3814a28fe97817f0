import FedTensor

/// Flattens every dimension after the batch dimension, as `torch.nn.Flatten()`: NCHW becomes
/// `[N, C·H·W]` in C, H, W order, so a following `Linear` matches PyTorch's weight layout.
/// No data moves: the output shares the input's storage.
public final class Flatten: Layer {
    private var inputShape: Shape?

    public init() {}

    public func outputShape(for input: Shape) throws -> Shape {
        guard input.rank >= 1 else { throw ModelError(.shapeMismatch, "Flatten needs a batch dimension") }
        return [input[0], input.count / max(input[0], 1)]
    }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        inputShape = training ? x.shape : nil
        return x.reshaped([x.shape[0], x.count / max(x.shape[0], 1)])
    }

    public func dropTrainingCache() { inputShape = nil }

    public func backward(_ dy: Tensor, needsInputGradient: Bool) -> Tensor {
        guard let s = inputShape else { preconditionFailure("Flatten.backward without a training forward") }
        inputShape = nil
        return needsInputGradient ? dy.reshaped(s) : noGradient
    }
}
