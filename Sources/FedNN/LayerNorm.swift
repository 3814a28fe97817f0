import FedTensor

/// Layer normalisation over the trailing dimensions, as `torch.nn.LayerNorm(normalized_shape)`:
/// each slice of `normalizedShape.count` elements is normalised, then scaled and shifted
/// elementwise by `weight` and `bias` of shape `normalizedShape`.
public final class LayerNorm: Layer {
    public let normalizedShape: Shape
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
        guard affine else { return }
        gamma = parameters.values[0]
        beta = parameters.values[1]
        gammaGrad = parameters.gradients[0]
        betaGrad = parameters.gradients[1]
    }

    public func outputShape(for input: Shape) throws -> Shape {
        guard input.rank > normalizedShape.rank, Array(input.dims.suffix(normalizedShape.rank)) == normalizedShape.dims
        else {
            throw ModelError(.shapeMismatch, "LayerNorm(\(normalizedShape)) expects [N, …, \(normalizedShape.dims)], got \(input)")
        }
        return input
    }

    private func kernel(_ shape: Shape) -> SegmentNormalization {
        let d = normalizedShape.count
        return SegmentNormalization(segments: shape.count / d, blocks: d, blockLength: 1, eps: eps, affineBase: { _ in 0 })
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
        guard let xShape = trainedShape else { preconditionFailure("LayerNorm.backward without a training forward") }
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
