import FedTensor

/// Average pooling over NCHW input, as `torch.nn.AvgPool2d(kernel, stride, padding)` with
/// `ceil_mode=False` and `count_include_pad=True` (padding counts as zeros in the average).
public final class AvgPool2d: Layer {
    private let window: PoolingWindow
    public var kernelSize: Int { window.kernelSize }
    public var stride: Int { window.stride }
    public var padding: Int { window.padding }
    private var inputShape: Shape?
    private var output = Tensor(shape: [0])
    private var inputGrad = Tensor(shape: [0])

    public init(_ kernelSize: Int, stride: Int? = nil, padding: Int = 0) {
        window = PoolingWindow(kernelSize, stride: stride, padding: padding)
    }

    private func geometry(_ s: Shape) -> ConvGeometry { window.geometry(s) }

    public func outputShape(for input: Shape) throws -> Shape {
        try window.outputShape(for: input, layer: "AvgPool2d")
    }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        let g = geometry(x.shape)
        let planes = x.shape[0] * x.shape[1]
        let (h, w, oh, ow) = (g.height, g.width, g.outHeight, g.outWidth)
        output.prepareForOverwrite(shape: [x.shape[0], x.shape[1], oh, ow])
        let (k, s, pad) = (kernelSize, stride, padding)
        let scale = 1 / Float(k * k)
        x.withUnsafeBufferPointer { xp in
            output.withUnsafeMutableBufferPointer { yp in
                for plane in 0..<planes {
                    let src = xp.baseAddress! + plane * h * w
                    let dst = yp.baseAddress! + plane * oh * ow
                    for i in 0..<oh {
                        let h0 = max(i * s - pad, 0)
                        let h1 = min(i * s - pad + k, h)
                        for j in 0..<ow {
                            let w0 = max(j * s - pad, 0)
                            let w1 = min(j * s - pad + k, w)
                            var acc: Float = 0
                            for y in h0..<h1 {
                                for x in w0..<w1 { acc += src[y * w + x] }
                            }
                            dst[i * ow + j] = acc * scale
                        }
                    }
                }
            }
        }
        inputShape = training ? x.shape : nil
        return output
    }

    public func dropTrainingCache() { inputShape = nil }

    public func backward(_ dy: Tensor, needsInputGradient: Bool) -> Tensor {
        guard let xShape = inputShape else { preconditionFailure("AvgPool2d.backward without a training forward") }
        inputShape = nil
        guard needsInputGradient else { return noGradient }
        let g = geometry(xShape)
        let planes = xShape[0] * xShape[1]
        let (h, w, oh, ow) = (g.height, g.width, g.outHeight, g.outWidth)
        let (k, s, pad) = (kernelSize, stride, padding)
        let scale = 1 / Float(k * k)
        inputGrad.prepareForOverwrite(shape: xShape)
        dy.withUnsafeBufferPointer { gp in
            inputGrad.withUnsafeMutableBufferPointer { dxp in
                dxp.update(repeating: 0)
                for plane in 0..<planes {
                    let dst = dxp.baseAddress! + plane * h * w
                    let src = gp.baseAddress! + plane * oh * ow
                    for i in 0..<oh {
                        let h0 = max(i * s - pad, 0)
                        let h1 = min(i * s - pad + k, h)
                        for j in 0..<ow {
                            let w0 = max(j * s - pad, 0)
                            let w1 = min(j * s - pad + k, w)
                            let v = src[i * ow + j] * scale
                            for y in h0..<h1 {
                                for x in w0..<w1 { dst[y * w + x] += v }
                            }
                        }
                    }
                }
            }
        }
        return inputGrad
    }
}
