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
