import FedTensor

/// `max(x, 0)` elementwise. The gradient passes where the output is positive, as in PyTorch.
public final class ReLU: Layer {
    private var cachedOutput: Tensor?
    private var output = Tensor(shape: [0])
    private var inputGrad = Tensor(shape: [0])

    public init() {}

    public func outputShape(for input: Shape) throws -> Shape { input }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        output.prepareForOverwrite(shape: x.shape)
        x.withUnsafeBufferPointer { xp in
            output.withUnsafeMutableBufferPointer { yp in
                let (src, dst) = (xp.baseAddress!, yp.baseAddress!)
                for i in 0..<xp.count {
                    let v = src[i]
                    dst[i] = v > 0 ? v : (v.isNaN ? v : 0)
                }
            }
        }
        cachedOutput = training ? output : nil
        return output
    }

    public func backward(_ dy: Tensor, needsInputGradient: Bool) -> Tensor {
        guard let y = cachedOutput else { preconditionFailure("ReLU.backward without a training forward") }
        cachedOutput = nil
        guard needsInputGradient else { return noGradient }
        inputGrad.prepareForOverwrite(shape: y.shape)
        y.withUnsafeBufferPointer { yp in
            dy.withUnsafeBufferPointer { gp in
                inputGrad.withUnsafeMutableBufferPointer { dxp in
                    let (out, g, dx) = (yp.baseAddress!, gp.baseAddress!, dxp.baseAddress!)
                    for i in 0..<yp.count { dx[i] = out[i] > 0 ? g[i] : 0 }
                }
            }
        }
        return inputGrad
    }
}
