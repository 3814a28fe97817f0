import FedTensor

/// Stochastic gradient descent with PyTorch's semantics (`torch.optim.SGD`):
/// `g = grad + wd·p`; with momentum, `buf = g` on the first step, then
/// `buf = μ·buf + (1 − dampening)·g`; Nesterov uses `g + μ·buf`, otherwise `buf`; `p −= lr·update`.
public final class SGD: Optimizer {
    public var learningRate: Float
    public let momentum: Float
    public let dampening: Float
    public let weightDecay: Float
    public let nesterov: Bool
    private var buffer: [Float] = []
    private var started = false

    public init(
        learningRate: Float, momentum: Float = 0, dampening: Float = 0, weightDecay: Float = 0, nesterov: Bool = false
    ) {
        precondition(!nesterov || (momentum > 0 && dampening == 0), "Nesterov needs momentum and zero dampening")
        self.learningRate = learningRate
        self.momentum = momentum
        self.dampening = dampening
        self.weightDecay = weightDecay
        self.nesterov = nesterov
    }

    public func reset() {
        started = false
    }

    public func step(_ parameters: ParameterSet) {
        let (lr, mu, wd, damp) = (learningRate, momentum, weightDecay, 1 - dampening)
        if mu != 0 && buffer.count != parameters.count {
            buffer = [Float](repeating: 0, count: parameters.count)
            started = false
        }
        let p = parameters.values.baseAddress!
        let g = parameters.gradients.baseAddress!
        let first = !started
        buffer.withUnsafeMutableBufferPointer { bp in
            let b = bp.baseAddress
            for whole in parameters.trainableRanges {
                ComputeThreads.forEachPiece(of: whole) { range in
                    if mu == 0 {
                        if wd == 0 {
                            for i in range { p[i] -= lr * g[i] }
                        } else {
                            for i in range { p[i] -= lr * (g[i] + wd * p[i]) }
                        }
                        return
                    }
                    let b = b!
                    for i in range {
                        let d = g[i] + wd * p[i]
                        let v = first ? d : mu * b[i] + damp * d
                        b[i] = v
                        p[i] -= lr * (nesterov ? d + mu * v : v)
                    }
                }
            }
        }
        started = true
    }
}
