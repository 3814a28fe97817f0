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
                VectorKernels.relu(xp.baseAddress!, yp.baseAddress!, xp.count)
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
                    VectorKernels.reluBackward(
                        output: yp.baseAddress!, gradient: gp.baseAddress!, result: dxp.baseAddress!, yp.count)
                }
            }
        }
        return inputGrad
    }
}
