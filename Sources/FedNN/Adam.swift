import FedTensor

/// Adam (`torch.optim.Adam`, L2 weight decay added to the gradient) and AdamW
/// (`torch.optim.AdamW`, decoupled decay `p ← p·(1 − lr·wd)` before the update).
/// Update: `m = β₁m + (1−β₁)g`, `v = β₂v + (1−β₂)g²`,
/// `p −= lr/(1−β₁ᵗ) · m / (√v/√(1−β₂ᵗ) + ε)`.
public final class Adam: Optimizer {
    public var learningRate: Float
    public let beta1, beta2, eps, weightDecay: Float
    /// True for AdamW.
    public let decoupledWeightDecay: Bool
    private var m: [Float] = []
    private var v: [Float] = []
    private var t = 0

    public init(
        learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8,
        weightDecay: Float = 0, decoupledWeightDecay: Bool = false
    ) {
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.weightDecay = weightDecay
        self.decoupledWeightDecay = decoupledWeightDecay
    }

    /// AdamW with PyTorch's default weight decay of 0.01.
    public static func adamW(learningRate: Float = 1e-3, weightDecay: Float = 0.01) -> Adam {
        Adam(learningRate: learningRate, weightDecay: weightDecay, decoupledWeightDecay: true)
    }

    public func reset() {
        t = 0
        for i in m.indices { m[i] = 0 }
        for i in v.indices { v[i] = 0 }
    }

    public func step(_ parameters: ParameterSet) {
        if m.count != parameters.count {
            m = [Float](repeating: 0, count: parameters.count)
            v = m
            t = 0
        }
        t += 1
        let (lr, b1, b2, eps, wd) = (learningRate, beta1, beta2, eps, weightDecay)
        let c1 = 1 - pow(Double(b1), Double(t))
        let c2 = 1 - pow(Double(b2), Double(t))
        let stepSize = lr / Float(c1)
        let c2Root = Float(c2.squareRoot())
        let decay = decoupledWeightDecay ? 1 - lr * wd : 1
        let l2 = decoupledWeightDecay ? 0 : wd
        let p = parameters.values.baseAddress!
        let g = parameters.gradients.baseAddress!
        m.withUnsafeMutableBufferPointer { mp in
            v.withUnsafeMutableBufferPointer { vp in
                let (mb, vb) = (mp.baseAddress!, vp.baseAddress!)
                for whole in parameters.trainableRanges {
                    ComputeThreads.forEachPiece(of: whole) { range in
                        for i in range {
                            p[i] *= decay
                            let gi = g[i] + l2 * p[i]
                            mb[i] = b1 * mb[i] + (1 - b1) * gi
                            vb[i] = b2 * vb[i] + (1 - b2) * gi * gi
                            p[i] -= stepSize * mb[i] / (vb[i].squareRoot() / c2Root + eps)
                        }
                    }
                }
            }
        }
    }
}

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
