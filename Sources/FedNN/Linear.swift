import FedTensor

/// Fully connected layer `y = x·Wᵀ + b`; weight `[out, in]`, bias `[out]` as in `torch.nn.Linear`.
/// Accepts any input whose last dimension is `inFeatures`.
public final class Linear: Layer {
    public let inFeatures: Int
    public let outFeatures: Int
    public let hasBias: Bool
    public var isFrozen = false
    private var weight: UnsafeMutablePointer<Float>!
    private var weightGrad: UnsafeMutablePointer<Float>!
    private var bias: UnsafeMutablePointer<Float>?
    private var biasGrad: UnsafeMutablePointer<Float>?
    private var input: Tensor?
    private var output = Tensor(shape: [0])
    private var inputGrad = Tensor(shape: [0])

    public init(_ inFeatures: Int, _ outFeatures: Int, bias: Bool = true) {
        precondition(inFeatures > 0 && outFeatures > 0)
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        self.hasBias = bias
    }

    public var parameterSpecs: [ParameterSpec] {
        let initializer = Initializer.pytorchDefault(fanIn: inFeatures)
        var specs = [ParameterSpec("weight", [outFeatures, inFeatures], initializer)]
        if hasBias { specs.append(ParameterSpec("bias", [outFeatures], initializer)) }
        return specs
    }

    public func bind(parameters: ParameterBinding, buffers: ParameterBinding) {
        weight = parameters.values[0]
        weightGrad = parameters.gradients[0]
        if hasBias {
            bias = parameters.values[1]
            biasGrad = parameters.gradients[1]
        }
    }

    public func outputShape(for input: Shape) throws -> Shape {
        guard input.rank >= 2, input.dims.last == inFeatures else {
            throw ModelError(
                .shapeMismatch, "Linear(\(inFeatures), \(outFeatures)) expects [N, …, \(inFeatures)], got \(input)")
        }
        var out = input
        out[out.rank - 1] = outFeatures
        return out
    }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        let rows = x.count / inFeatures
        var outShape = x.shape
        outShape[outShape.rank - 1] = outFeatures
        output.prepareForOverwrite(shape: outShape)
        let (nIn, nOut) = (inFeatures, outFeatures)
        let (w, b) = (weight!, bias)
        x.withUnsafeBufferPointer { xp in
            output.withUnsafeMutableBufferPointer { yp in
                let y = yp.baseAddress!
                if let b {
                    for r in 0..<rows { (y + r * nOut).update(from: b, count: nOut) }
                }
                BLAS.sgemmParallel(
                    .none, .transposed, m: rows, n: nOut, k: nIn, a: xp.baseAddress!, lda: nIn,
                    b: w, ldb: nIn, beta: b == nil ? 0 : 1, c: y, ldc: nOut)
            }
        }
        input = training ? x : nil
        return output
    }

    public func dropTrainingCache() { input = nil }

    public func backward(_ dy: Tensor, needsInputGradient: Bool) -> Tensor {
        guard let x = input else { preconditionFailure("Linear.backward without a training forward") }
        input = nil
        let rows = x.count / inFeatures
        let (nIn, nOut) = (inFeatures, outFeatures)
        dy.withUnsafeBufferPointer { dyp in
            let g = dyp.baseAddress!
            if !isFrozen {
                x.withUnsafeBufferPointer { xp in
                    BLAS.sgemmParallel(
                        .transposed, .none, m: nOut, n: nIn, k: rows, a: g, lda: nOut,
                        b: xp.baseAddress!, ldb: nIn, beta: 1, c: weightGrad, ldc: nIn)
                }
                if let bg = biasGrad {
                    for r in 0..<rows {
                        let row = g + r * nOut
                        for j in 0..<nOut { bg[j] += row[j] }
                    }
                }
            }
        }
        guard needsInputGradient else { return noGradient }
        inputGrad.prepareForOverwrite(shape: x.shape)
        dy.withUnsafeBufferPointer { dyp in
            inputGrad.withUnsafeMutableBufferPointer { dxp in
                BLAS.sgemmParallel(
                    .none, .none, m: rows, n: nIn, k: nOut, a: dyp.baseAddress!, lda: nOut,
                    b: weight, ldb: nIn, c: dxp.baseAddress!, ldc: nIn)
            }
        }
        return inputGrad
    }
}
