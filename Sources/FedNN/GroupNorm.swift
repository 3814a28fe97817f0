import FedTensor

/// Group normalisation, as `torch.nn.GroupNorm(groups, channels, eps, affine)`: per sample, the
/// channels are split into `groups` groups normalised together, then each channel is scaled and
/// shifted. Independent of the batch, so it suits federated clients with small, skewed batches.
public final class GroupNorm: Layer {
    public let groups, channels: Int
    public let eps: Float
    public let affine: Bool
    public var isFrozen = false
    private var gamma: UnsafeMutablePointer<Float>?
    private var beta: UnsafeMutablePointer<Float>?
    private var gammaGrad: UnsafeMutablePointer<Float>?
    private var betaGrad: UnsafeMutablePointer<Float>?
    private var normalized = Tensor(shape: [0])
    private var invStd: [Float] = []
    private var trainedShape: Shape?
    private var output = Tensor(shape: [0])
    private var inputGrad = Tensor(shape: [0])

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
        guard affine else { return }
        gamma = parameters.values[0]
        beta = parameters.values[1]
        gammaGrad = parameters.gradients[0]
        betaGrad = parameters.gradients[1]
    }

    public func outputShape(for input: Shape) throws -> Shape {
        guard input.rank >= 2, input[1] == channels else {
            throw ModelError(.shapeMismatch, "GroupNorm(\(groups), \(channels)) expects [N, \(channels), …], got \(input)")
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
        let k = kernel(x.shape)
        output.prepareForOverwrite(shape: x.shape)
        normalized.prepareForOverwrite(shape: x.shape)
        if invStd.count != k.segments { invStd = [Float](repeating: 0, count: k.segments) }
        x.withUnsafeBufferPointer { xp in
            normalized.withUnsafeMutableBufferPointer { np in
                output.withUnsafeMutableBufferPointer { yp in
                    invStd.withUnsafeMutableBufferPointer { ip in
                        k.forward(
                            xp.baseAddress!, normalized: np.baseAddress!, output: yp.baseAddress!,
                            invStd: ip.baseAddress!, gamma: gamma, beta: beta)
                    }
                }
            }
        }
        trainedShape = training ? x.shape : nil
        return output
    }

    public func backward(_ dy: Tensor, needsInputGradient: Bool) -> Tensor {
        guard let xShape = trainedShape else { preconditionFailure("GroupNorm.backward without a training forward") }
        trainedShape = nil
        let k = kernel(xShape)
        if needsInputGradient { inputGrad.prepareForOverwrite(shape: xShape) }
        let dx: UnsafeMutablePointer<Float>? =
            needsInputGradient ? inputGrad.withUnsafeMutableBufferPointer { $0.baseAddress! } : nil
        dy.withUnsafeBufferPointer { gp in
            normalized.withUnsafeBufferPointer { np in
                invStd.withUnsafeBufferPointer { ip in
                    k.backward(
                        gp.baseAddress!, normalized: np.baseAddress!, invStd: ip.baseAddress!, gamma: gamma,
                        gammaGrad: isFrozen ? nil : gammaGrad, betaGrad: isFrozen ? nil : betaGrad, inputGrad: dx)
                }
            }
        }
        return needsInputGradient ? inputGrad : noGradient
    }
}
