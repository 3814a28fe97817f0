import FedTensor

/// Group normalisation, as `torch.nn.GroupNorm(groups, channels, eps, affine)`: per sample, the
/// channels are split into `groups` groups normalised together, then each channel is scaled and
/// shifted. Independent of the batch, so it suits federated clients with small, skewed batches.
public final class GroupNorm: Layer {
    public let groups, channels: Int
    public let eps: Float
    public let affine: Bool
    public var isFrozen = false
    private var runner = SegmentNormalizationRunner()

    public init(groups: Int, channels: Int, eps: Float = 1e-5, affine: Bool = true) {
        precondition(groups > 0 && channels > 0 && channels % groups == 0, "channels must divide into groups")
        self.groups = groups
        self.channels = channels
        self.eps = eps
        self.affine = affine
    }

    public var parameterSpecs: [ParameterSpec] {
        affine ? [ParameterSpec("weight", [channels], .ones), ParameterSpec("bias", [channels], .zeros)] : []
    }

    public func bind(parameters: ParameterBinding, buffers: ParameterBinding) {
        if affine { runner.bind(parameters) }
    }

    public func outputShape(for input: Shape) throws -> Shape {
        guard input.rank >= 2, input[1] == channels else {
            throw ModelError(
                .shapeMismatch, "GroupNorm(\(groups), \(channels)) expects [N, \(channels), …], got \(input)")
        }
        return input
    }

    private func kernel(_ shape: Shape) -> SegmentNormalization {
        let perGroup = channels / groups
        let g = groups
        return SegmentNormalization(
            segments: shape[0] * groups, blocks: perGroup, blockLength: shape.count / (shape[0] * channels), eps: eps,
            affineBase: { ($0 % g) * perGroup })
    }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        runner.forward(x, kernel: kernel(x.shape), training: training)
    }

    public func dropTrainingCache() { runner.dropTrainedShape() }

    public func backward(_ dy: Tensor, needsInputGradient: Bool) -> Tensor {
        let shape = runner.takeTrainedShape("GroupNorm")
        return runner.backward(
            dy, inputShape: shape, kernel: kernel(shape), frozen: isFrozen, needsInputGradient: needsInputGradient)
    }
}
