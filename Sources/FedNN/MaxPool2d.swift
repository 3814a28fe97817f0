import FedTensor

/// Max pooling over NCHW input, as `torch.nn.MaxPool2d(kernel, stride, padding)` with
/// `ceil_mode=False`. On ties the first maximum in scan order wins, as in PyTorch.
public final class MaxPool2d: Layer {
    public let kernelSize, stride, padding: Int
    private var argmax: [Int32] = []
    private var inputShape: Shape?
    private var output = Tensor(shape: [0])
    private var inputGrad = Tensor(shape: [0])

    public init(_ kernelSize: Int, stride: Int? = nil, padding: Int = 0) {
        precondition(kernelSize > 0 && (stride ?? 1) > 0 && padding >= 0 && 2 * padding <= kernelSize)
        self.kernelSize = kernelSize
        self.stride = stride ?? kernelSize
        self.padding = padding
    }

    private func geometry(_ s: Shape) -> ConvGeometry {
        ConvGeometry(
            channels: 1, height: s[2], width: s[3], kernelH: kernelSize, kernelW: kernelSize, strideH: stride,
            strideW: stride, padH: padding, padW: padding)
    }

    public func outputShape(for input: Shape) throws -> Shape {
        guard input.rank == 4, geometry(input).isValid else {
            throw ModelError(.shapeMismatch, "MaxPool2d(\(kernelSize)) expects [N, C, H, W] with H, W ≥ \(kernelSize), got \(input)")
        }
        let g = geometry(input)
        return [input[0], input[1], g.outHeight, g.outWidth]
    }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        let g = geometry(x.shape)
        let planes = x.shape[0] * x.shape[1]
        let (h, w, oh, ow) = (g.height, g.width, g.outHeight, g.outWidth)
        output.prepareForOverwrite(shape: [x.shape[0], x.shape[1], oh, ow])
        if argmax.count != planes * oh * ow { argmax = [Int32](repeating: 0, count: planes * oh * ow) }
        let (k, s, pad) = (kernelSize, stride, padding)
        x.withUnsafeBufferPointer { xp in
            output.withUnsafeMutableBufferPointer { yp in
                argmax.withUnsafeMutableBufferPointer { ap in
                    for plane in 0..<planes {
                        let src = xp.baseAddress! + plane * h * w
                        let dst = yp.baseAddress! + plane * oh * ow
                        let arg = ap.baseAddress! + plane * oh * ow
                        for i in 0..<oh {
                            let h0 = max(i * s - pad, 0)
                            let h1 = min(i * s - pad + k, h)
                            for j in 0..<ow {
                                let w0 = max(j * s - pad, 0)
                                let w1 = min(j * s - pad + k, w)
                                var best = -Float.infinity
                                var bestIndex = h0 * w + w0
                                for y in h0..<h1 {
                                    for x in w0..<w1 {
                                        let v = src[y * w + x]
                                        if v > best || v.isNaN {
                                            best = v
                                            bestIndex = y * w + x
                                        }
                                    }
                                }
                                dst[i * ow + j] = best
                                arg[i * ow + j] = Int32(bestIndex)
                            }
                        }
                    }
                }
            }
        }
        inputShape = training ? x.shape : nil
        return output
    }

    public func backward(_ dy: Tensor, needsInputGradient: Bool) -> Tensor {
        guard let xShape = inputShape else { preconditionFailure("MaxPool2d.backward without a training forward") }
        inputShape = nil
        guard needsInputGradient else { return noGradient }
        let planes = xShape[0] * xShape[1]
        let inPlane = xShape[2] * xShape[3]
        let outPlane = dy.count / planes
        inputGrad.prepareForOverwrite(shape: xShape)
        dy.withUnsafeBufferPointer { gp in
            inputGrad.withUnsafeMutableBufferPointer { dxp in
                dxp.update(repeating: 0)
                argmax.withUnsafeBufferPointer { ap in
                    for plane in 0..<planes {
                        let dst = dxp.baseAddress! + plane * inPlane
                        let src = gp.baseAddress! + plane * outPlane
                        let arg = ap.baseAddress! + plane * outPlane
                        for i in 0..<outPlane { dst[Int(arg[i])] += src[i] }
                    }
                }
            }
        }
        return inputGrad
    }
}
