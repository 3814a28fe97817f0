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

    func forward(
        _ x: UnsafePointer<Float>, normalized: UnsafeMutablePointer<Float>, output: UnsafeMutablePointer<Float>,
        invStd: UnsafeMutablePointer<Float>, gamma: UnsafePointer<Float>?, beta: UnsafePointer<Float>?
    ) {
        let len = segmentLength
        for s in 0..<segments {
            let src = x + s * len
            var sum: Double = 0
            for i in 0..<len { sum += Double(src[i]) }
            let mean = Float(sum / Double(len))
            var sq: Double = 0
            for i in 0..<len {
                let d = Double(src[i] - mean)
                sq += d * d
            }
            let inv = 1 / (Float(sq / Double(len)) + eps).squareRoot()
            invStd[s] = inv
            let base = affineBase(s)
            for b in 0..<blocks {
                let g = gamma?[base + b] ?? 1
                let t = beta?[base + b] ?? 0
                let off = s * len + b * blockLength
                for i in 0..<blockLength {
                    let v = (x[off + i] - mean) * inv
                    normalized[off + i] = v
                    output[off + i] = v * g + t
                }
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
            var sumD: Float = 0
            var sumDX: Float = 0
            for b in 0..<blocks {
                let g = gamma?[base + b] ?? 1
                let off = s * len + b * blockLength
                var dyx: Float = 0
                var dys: Float = 0
                for i in 0..<blockLength {
                    dys += dy[off + i]
                    dyx += dy[off + i] * normalized[off + i]
                }
                gammaGrad?[base + b] += dyx
                betaGrad?[base + b] += dys
                sumD += dys * g
                sumDX += dyx * g
            }
            guard let dx = inputGrad else { continue }
            let inv = invStd[s]
            for b in 0..<blocks {
                let g = gamma?[base + b] ?? 1
                let off = s * len + b * blockLength
                for i in 0..<blockLength {
                    dx[off + i] = inv * (dy[off + i] * g - scale * sumD - normalized[off + i] * scale * sumDX)
                }
            }
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
        normalized.prepareForOverwrite(shape: x.shape)
        if invStd.count != k.segments { invStd = [Float](repeating: 0, count: k.segments) }
        let (g, b) = (gamma, beta)
        x.withUnsafeBufferPointer { xp in
            normalized.withUnsafeMutableBufferPointer { np in
                output.withUnsafeMutableBufferPointer { yp in
                    invStd.withUnsafeMutableBufferPointer { ip in
                        k.forward(
                            xp.baseAddress!, normalized: np.baseAddress!, output: yp.baseAddress!,
                            invStd: ip.baseAddress!, gamma: g, beta: b)
                    }
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
