import FedTensor

/// Shared kernel of GroupNorm and LayerNorm: normalise contiguous segments of `blocks · blockLength`
/// elements to zero mean and unit variance, then scale and shift each block by its own
/// `gamma[affineBase + b]`, `beta[affineBase + b]`.
struct SegmentNormalization {
    let segments: Int
    let blocks: Int
    let blockLength: Int
    let eps: Float
    /// First affine index of segment `s`.
    let affineBase: (Int) -> Int

    var segmentLength: Int { blocks * blockLength }

    /// Normalises every segment of `x` into `output`, keeping `(x − mean)·invStd` in `normalized`
    /// (backward reads it; inference passes nil) and each segment's `invStd`.
    func forward(
        _ x: UnsafePointer<Float>, normalized: UnsafeMutablePointer<Float>?, output: UnsafeMutablePointer<Float>,
        invStd: UnsafeMutablePointer<Float>, gamma: UnsafePointer<Float>?, beta: UnsafePointer<Float>?
    ) {
        let len = segmentLength
        for s in 0..<segments {
            let src = x + s * len
            // Two passes (mean, then squared deviations from it): no cancellation when the mean is
            // large against the spread.
            let mean = Float(VectorKernels.sum(src, len) / Double(len))
            let variance = Float(VectorKernels.sumOfSquaredDeviations(src, len, from: mean) / Double(len))
            let inv = 1 / (variance + eps).squareRoot()
            invStd[s] = inv
            let base = affineBase(s)
            if blockLength == 1 {
                // LayerNorm: an affine pair per element.
                let out = output + s * len
                for i in 0..<len {
                    let v = (src[i] - mean) * inv
                    normalized?[s * len + i] = v
                    out[i] = v * (gamma?[base + i] ?? 1) + (beta?[base + i] ?? 0)
                }
                continue
            }
            for b in 0..<blocks {
                let off = s * len + b * blockLength
                VectorKernels.normalize(
                    x + off, normalized: normalized.map { $0 + off }, output: output + off, blockLength, mean: mean,
                    invStd: inv, scale: gamma?[base + b] ?? 1, shift: beta?[base + b] ?? 0)
            }
        }
    }

    func backward(
        _ dy: UnsafePointer<Float>, normalized: UnsafePointer<Float>, invStd: UnsafePointer<Float>,
        gamma: UnsafePointer<Float>?, gammaGrad: UnsafeMutablePointer<Float>?, betaGrad: UnsafeMutablePointer<Float>?,
        inputGrad: UnsafeMutablePointer<Float>?
    ) {
        let len = segmentLength
        let scale = 1 / Float(len)
        for s in 0..<segments {
            let base = affineBase(s)
            var sumD: Double = 0
            var sumDX: Double = 0
            if blockLength == 1 {
                // LayerNorm: a block per element, so no per-block reduction to call.
                let (d, v) = (dy + s * len, normalized + s * len)
                for i in 0..<len {
                    let (g, dyx) = (gamma?[base + i] ?? 1, d[i] * v[i])
                    gammaGrad?[base + i] += dyx
                    betaGrad?[base + i] += d[i]
                    sumD += Double(d[i] * g)
                    sumDX += Double(dyx * g)
                }
            } else {
                accumulateBlocks(
                    dy, normalized, segment: s, gamma: gamma, gammaGrad: gammaGrad, betaGrad: betaGrad,
                    sumD: &sumD, sumDX: &sumDX)
            }
            guard let dx = inputGrad else { continue }
            let (a, c) = (scale * Float(sumD), scale * Float(sumDX))
            if blockLength == 1 {
                let (d, v, out, inv) = (dy + s * len, normalized + s * len, dx + s * len, invStd[s])
                for i in 0..<len { out[i] = inv * (d[i] * (gamma?[base + i] ?? 1) - a - v[i] * c) }
                continue
            }
            for b in 0..<blocks {
                let off = s * len + b * blockLength
                VectorKernels.normalizeBackward(
                    gradient: dy + off, normalized: normalized + off, result: dx + off, blockLength, invStd: invStd[s],
                    scale: gamma?[base + b] ?? 1, a: a, b: c)
            }
        }
    }

    /// Per block of segment `s`: gamma's and beta's gradients, and the segment's sums of
    /// `dy·gamma` and `dy·normalized·gamma` for the input gradient.
    private func accumulateBlocks(
        _ dy: UnsafePointer<Float>, _ normalized: UnsafePointer<Float>, segment s: Int, gamma: UnsafePointer<Float>?,
        gammaGrad: UnsafeMutablePointer<Float>?, betaGrad: UnsafeMutablePointer<Float>?, sumD: inout Double,
        sumDX: inout Double
    ) {
        let base = affineBase(s)
        for b in 0..<blocks {
            let g = gamma?[base + b] ?? 1
            let off = s * segmentLength + b * blockLength
            let (dys, dyx) = VectorKernels.sumAndDot(dy + off, normalized + off, blockLength)
            gammaGrad?[base + b] += Float(dyx)
            betaGrad?[base + b] += Float(dys)
            sumD += dys * Double(g)
            sumDX += dyx * Double(g)
        }
    }
}

/// Buffers and affine parameters of a layer normalised with `SegmentNormalization`, and the
/// forward/backward plumbing GroupNorm and LayerNorm share.
struct SegmentNormalizationRunner {
    var gamma: UnsafeMutablePointer<Float>?
    var beta: UnsafeMutablePointer<Float>?
    var gammaGrad: UnsafeMutablePointer<Float>?
    var betaGrad: UnsafeMutablePointer<Float>?
    private var normalized = Tensor(shape: [0])
    private var invStd: [Float] = []
    private var trainedShape: Shape?
    private var output = Tensor(shape: [0])
    private var inputGrad = Tensor(shape: [0])

    mutating func bind(_ parameters: ParameterBinding) {
        gamma = parameters.values[0]
        beta = parameters.values[1]
        gammaGrad = parameters.gradients[0]
        betaGrad = parameters.gradients[1]
    }

    mutating func forward(_ x: Tensor, kernel k: SegmentNormalization, training: Bool) -> Tensor {
        output.prepareForOverwrite(shape: x.shape)
        // Only backward reads the normalized values: inference neither keeps nor writes them.
        if training { normalized.prepareForOverwrite(shape: x.shape) }
        if invStd.count != k.segments { invStd = [Float](repeating: 0, count: k.segments) }
        let (g, b) = (gamma, beta)
        let kept: UnsafeMutablePointer<Float>? =
            training ? normalized.withUnsafeMutableBufferPointer { $0.baseAddress! } : nil
        x.withUnsafeBufferPointer { xp in
            output.withUnsafeMutableBufferPointer { yp in
                invStd.withUnsafeMutableBufferPointer { ip in
                    k.forward(
                        xp.baseAddress!, normalized: kept, output: yp.baseAddress!, invStd: ip.baseAddress!, gamma: g,
                        beta: b)
                }
            }
        }
        trainedShape = training ? x.shape : nil
        return output
    }

    mutating func dropTrainedShape() { trainedShape = nil }

    /// The shape of the last training forward, consumed by `backward`.
    mutating func takeTrainedShape(_ layer: String) -> Shape {
        guard let s = trainedShape else { preconditionFailure("\(layer).backward without a training forward") }
        trainedShape = nil
        return s
    }

    mutating func backward(
        _ dy: Tensor, inputShape: Shape, kernel k: SegmentNormalization, frozen: Bool, needsInputGradient: Bool
    ) -> Tensor {
        if needsInputGradient { inputGrad.prepareForOverwrite(shape: inputShape) }
        let dx: UnsafeMutablePointer<Float>? =
            needsInputGradient ? inputGrad.withUnsafeMutableBufferPointer { $0.baseAddress! } : nil
        let (g, gg, bg) = (gamma, frozen ? nil : gammaGrad, frozen ? nil : betaGrad)
        dy.withUnsafeBufferPointer { gp in
            normalized.withUnsafeBufferPointer { np in
                invStd.withUnsafeBufferPointer { ip in
                    k.backward(
                        gp.baseAddress!, normalized: np.baseAddress!, invStd: ip.baseAddress!, gamma: g,
                        gammaGrad: gg, betaGrad: bg, inputGrad: dx)
                }
            }
        }
        return needsInputGradient ? inputGrad : noGradient
    }
}
