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
        let fast = k == 2 && s == 2 && pad == 0
        x.withUnsafeBufferPointer { xp in
            output.withUnsafeMutableBufferPointer { yp in
                argmax.withUnsafeMutableBufferPointer { ap in
                    let (xBase, yBase, aBase) = (xp.baseAddress!, yp.baseAddress!, ap.baseAddress!)
                    ComputeThreads.forEachRange(planes) { _, range in
                        for plane in range {
                            let src = xBase + plane * h * w
                            let dst = yBase + plane * oh * ow
                            let arg = aBase + plane * oh * ow
                            if fast {
                                Self.pool2x2(src, dst, arg, w: w, oh: oh, ow: ow)
                            } else {
                                Self.poolGeneric(src, dst, arg, h: h, w: w, oh: oh, ow: ow, k: k, s: s, pad: pad)
                            }
                        }
                    }
                }
            }
        }
        inputShape = training ? x.shape : nil
        return output
    }

    /// 2×2 windows with stride 2: the common case, unrolled. Scan order a, b (top row), c, d.
    @inline(__always)
    static func pool2x2(
        _ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ arg: UnsafeMutablePointer<Int32>,
        w: Int, oh: Int, ow: Int
    ) {
        for i in 0..<oh {
            let r0 = src + 2 * i * w
            let r1 = r0 + w
            let base = Int32(2 * i * w)
            for j in 0..<ow {
                // Branch-free selects: on real activations these compares are unpredictable.
                var best = r0[2 * j]
                var idx = base + Int32(2 * j)
                let b = r0[2 * j + 1]
                let tb = b > best || b != b
                best = tb ? b : best
                idx = tb ? base + Int32(2 * j + 1) : idx
                let c = r1[2 * j]
                let tc = c > best || c != c
                best = tc ? c : best
                idx = tc ? base + Int32(w + 2 * j) : idx
                let d = r1[2 * j + 1]
                let td = d > best || d != d
                best = td ? d : best
                idx = td ? base + Int32(w + 2 * j + 1) : idx
                dst[i * ow + j] = best
                arg[i * ow + j] = idx
            }
        }
    }

    static func poolGeneric(
        _ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ arg: UnsafeMutablePointer<Int32>,
        h: Int, w: Int, oh: Int, ow: Int, k: Int, s: Int, pad: Int
    ) {
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
