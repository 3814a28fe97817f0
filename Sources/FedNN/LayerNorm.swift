import FedTensor

/// Layer normalisation over the trailing dimensions, as `torch.nn.LayerNorm(normalized_shape)`:
/// each slice of `normalizedShape.count` elements is normalised, then scaled and shifted
/// elementwise by `weight` and `bias` of shape `normalizedShape`.
public final class LayerNorm: Layer {
    public let normalizedShape: Shape
    public let eps: Float
    public let affine: Bool
    public var isFrozen = false
    private var runner = SegmentNormalizationRunner()

    public init(_ normalizedShape: Shape, eps: Float = 1e-5, affine: Bool = true) {
        precondition(normalizedShape.rank > 0 && normalizedShape.count > 0)
        self.normalizedShape = normalizedShape
        self.eps = eps
        self.affine = affine
    }

    public var parameterSpecs: [ParameterSpec] {
        affine ? [ParameterSpec("weight", normalizedShape, .ones), ParameterSpec("bias", normalizedShape, .zeros)] : []
    }

    public func bind(parameters: ParameterBinding, buffers: ParameterBinding) {
        if affine { runner.bind(parameters) }
    }

    public func outputShape(for input: Shape) throws -> Shape {
        guard input.rank > normalizedShape.rank, Array(input.dims.suffix(normalizedShape.rank)) == normalizedShape.dims
        else {
            throw ModelError(
                .shapeMismatch, "LayerNorm(\(normalizedShape)) expects [N, …, \(normalizedShape.dims)], got \(input)")
        }
        return input
    }

    private func kernel(_ shape: Shape) -> SegmentNormalization {
        let d = normalizedShape.count
        return SegmentNormalization(
            segments: shape.count / d, blocks: d, blockLength: 1, eps: eps, affineBase: { _ in 0 })
    }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        runner.forward(x, kernel: kernel(x.shape), training: training)
    }

    public func dropTrainingCache() { runner.dropTrainedShape() }

    public func backward(_ dy: Tensor, needsInputGradient: Bool) -> Tensor {
        let shape = runner.takeTrainedShape("LayerNorm")
        return runner.backward(
            dy, inputShape: shape, kernel: kernel(shape), frozen: isFrozen, needsInputGradient: needsInputGradient)
    }
}
