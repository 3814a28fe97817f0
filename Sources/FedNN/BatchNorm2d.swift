import FedTensor

/// Batch normalisation over the channels of NCHW input, as `torch.nn.BatchNorm2d`: batch
/// statistics in training (running mean and unbiased running variance updated with
/// `momentum`), running statistics in evaluation. Buffers: `running_mean`, `running_var`,
/// `num_batches_tracked` (stored as a float scalar).
public final class BatchNorm2d: Layer {
    public let channels: Int
    public let eps: Float
    public let momentum: Float
    public var isFrozen = false
    private var gamma: UnsafeMutablePointer<Float>!
    private var beta: UnsafeMutablePointer<Float>!
    private var gammaGrad: UnsafeMutablePointer<Float>!
    private var betaGrad: UnsafeMutablePointer<Float>!
    private var runningMean: UnsafeMutablePointer<Float>!
    private var runningVar: UnsafeMutablePointer<Float>!
    private var batchesTracked: UnsafeMutablePointer<Float>!
    private var normalized = Tensor(shape: [0])
    private var invStd: [Float] = []
    private var trainedShape: Shape?
    private var output = Tensor(shape: [0])
    private var inputGrad = Tensor(shape: [0])

    public init(_ channels: Int, eps: Float = 1e-5, momentum: Float = 0.1) {
        precondition(channels > 0)
        self.channels = channels
        self.eps = eps
        self.momentum = momentum
    }

    public var parameterSpecs: [ParameterSpec] {
        [ParameterSpec("weight", [channels], .ones), ParameterSpec("bias", [channels], .zeros)]
    }

    public var bufferSpecs: [ParameterSpec] {
        [
            ParameterSpec("running_mean", [channels], .zeros), ParameterSpec("running_var", [channels], .ones),
            ParameterSpec("num_batches_tracked", [], .zeros),
        ]
    }

    public func bind(parameters: ParameterBinding, buffers: ParameterBinding) {
        gamma = parameters.values[0]
        beta = parameters.values[1]
        gammaGrad = parameters.gradients[0]
        betaGrad = parameters.gradients[1]
        runningMean = buffers.values[0]
        runningVar = buffers.values[1]
        batchesTracked = buffers.values[2]
    }

    public func outputShape(for input: Shape) throws -> Shape {
        guard input.rank == 4, input[1] == channels else {
            throw ModelError(.shapeMismatch, "BatchNorm2d(\(channels)) expects [N, \(channels), H, W], got \(input)")
        }
        return input
    }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        let n = x.shape[0]
        let c = channels
        let hw = x.count / (n * c)
        let m = n * hw
        output.prepareForOverwrite(shape: x.shape)
        normalized.prepareForOverwrite(shape: x.shape)
        if invStd.count != c { invStd = [Float](repeating: 0, count: c) }
        x.withUnsafeBufferPointer { xp in
            normalized.withUnsafeMutableBufferPointer { np in
                output.withUnsafeMutableBufferPointer { yp in
                    for ch in 0..<c {
                        var mean: Float
                        var inv: Float
                        if training {
                            var sum: Double = 0
                            for s in 0..<n {
                                let row = xp.baseAddress! + (s * c + ch) * hw
                                for i in 0..<hw { sum += Double(row[i]) }
                            }
                            mean = Float(sum / Double(m))
                            var sq: Double = 0
                            for s in 0..<n {
                                let row = xp.baseAddress! + (s * c + ch) * hw
                                for i in 0..<hw {
                                    let d = Double(row[i] - mean)
                                    sq += d * d
                                }
                            }
                            let variance = Float(sq / Double(m))
                            inv = 1 / (variance + eps).squareRoot()
                            let unbiased = m > 1 ? Float(sq / Double(m - 1)) : variance
                            runningMean[ch] = (1 - momentum) * runningMean[ch] + momentum * mean
                            runningVar[ch] = (1 - momentum) * runningVar[ch] + momentum * unbiased
                        } else {
                            mean = runningMean[ch]
                            inv = 1 / (runningVar[ch] + eps).squareRoot()
                        }
                        invStd[ch] = inv
                        let (g, b) = (gamma[ch], beta[ch])
                        for s in 0..<n {
                            let off = (s * c + ch) * hw
                            let src = xp.baseAddress! + off
                            let nrm = np.baseAddress! + off
                            let dst = yp.baseAddress! + off
                            for i in 0..<hw {
                                let v = (src[i] - mean) * inv
                                nrm[i] = v
                                dst[i] = v * g + b
                            }
                        }
                    }
                }
            }
        }
        if training { batchesTracked[0] += 1 }
        trainedShape = training ? x.shape : nil
        return output
    }

    public func dropTrainingCache() { trainedShape = nil }

    public func backward(_ dy: Tensor, needsInputGradient: Bool) -> Tensor {
        guard let xShape = trainedShape else { preconditionFailure("BatchNorm2d.backward without a training forward") }
        trainedShape = nil
        let n = xShape[0]
        let c = channels
        let hw = dy.count / (n * c)
        let m = Float(n * hw)
        if needsInputGradient { inputGrad.prepareForOverwrite(shape: xShape) }
        dy.withUnsafeBufferPointer { gp in
            normalized.withUnsafeBufferPointer { np in
                for ch in 0..<c {
                    var sumDy: Float = 0
                    var sumDyX: Float = 0
                    for s in 0..<n {
                        let off = (s * c + ch) * hw
                        for i in 0..<hw {
                            sumDy += gp[off + i]
                            sumDyX += gp[off + i] * np[off + i]
                        }
                    }
                    if !isFrozen {
                        gammaGrad[ch] += sumDyX
                        betaGrad[ch] += sumDy
                    }
                    guard needsInputGradient else { continue }
                    let g = gamma[ch]
                    let inv = invStd[ch]
                    inputGrad.withUnsafeMutableBufferPointer { dxp in
                        for s in 0..<n {
                            let off = (s * c + ch) * hw
                            for i in 0..<hw {
                                dxp[off + i] = g * inv * (gp[off + i] - sumDy / m - np[off + i] * sumDyX / m)
                            }
                        }
                    }
                }
            }
        }
        return needsInputGradient ? inputGrad : noGradient
    }
}
