import FedTensor

/// `max(x, 0)` elementwise. The gradient passes where the output is positive, as in PyTorch.
public final class ReLU: Layer {
    private var cachedOutput: Tensor?
    private var output = Tensor(shape: [0])
    private var inputGrad = Tensor(shape: [0])

    public init() {}

    /// Elements per unit of parallel work; small tensors stay on one thread.
    static let block = 1 << 15

    private func parallelBlocks(_ count: Int) -> Int { (count + Self.block - 1) / Self.block }

    public func outputShape(for input: Shape) throws -> Shape { input }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        output.prepareForOverwrite(shape: x.shape)
        x.withUnsafeBufferPointer { xp in
            output.withUnsafeMutableBufferPointer { yp in
                let (src, dst) = (xp.baseAddress!, yp.baseAddress!)
                ComputeThreads.forEachRange(parallelBlocks(xp.count)) { _, r in
                    let lo = r.lowerBound * Self.block
                    let hi = min(xp.count, r.upperBound * Self.block)
                    VectorKernels.relu(src + lo, dst + lo, hi - lo)
                }
            }
        }
        cachedOutput = training ? output : nil
        return output
    }

    public func dropTrainingCache() { cachedOutput = nil }

    public func backward(_ dy: Tensor, needsInputGradient: Bool) -> Tensor {
        guard let y = cachedOutput else { preconditionFailure("ReLU.backward without a training forward") }
        cachedOutput = nil
        guard needsInputGradient else { return noGradient }
        inputGrad.prepareForOverwrite(shape: y.shape)
        y.withUnsafeBufferPointer { yp in
            dy.withUnsafeBufferPointer { gp in
                inputGrad.withUnsafeMutableBufferPointer { dxp in
                    let (out, g, dx) = (yp.baseAddress!, gp.baseAddress!, dxp.baseAddress!)
                    ComputeThreads.forEachRange(parallelBlocks(yp.count)) { _, r in
                        let lo = r.lowerBound * Self.block
                        let hi = min(yp.count, r.upperBound * Self.block)
                        VectorKernels.reluBackward(output: out + lo, gradient: g + lo, result: dx + lo, hi - lo)
                    }
                }
            }
        }
        return inputGrad
    }
}
