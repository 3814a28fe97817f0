import FedTensor

/// Max pooling over NCHW input, as `torch.nn.MaxPool2d(kernel, stride, padding)` with
/// `ceil_mode=False`. On ties the first maximum in scan order wins, as in PyTorch.
public final class MaxPool2d: Layer {
    private let window: PoolingWindow
    public var kernelSize: Int { window.kernelSize }
    public var stride: Int { window.stride }
    public var padding: Int { window.padding }
    private var argmax: [Int32] = []
    private var inputShape: Shape?
    private var output = Tensor(shape: [0])
    private var inputGrad = Tensor(shape: [0])

    public init(_ kernelSize: Int, stride: Int? = nil, padding: Int = 0) {
        window = PoolingWindow(kernelSize, stride: stride, padding: padding)
    }

    private func geometry(_ s: Shape) -> ConvGeometry { window.geometry(s) }

    public func outputShape(for input: Shape) throws -> Shape {
        try window.outputShape(for: input, layer: "MaxPool2d")
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

    /// 2×2 windows with stride 2, the common case: eight windows at a time with SIMD, the even
    /// and odd lanes of two input rows giving each window's four candidates in scan order
    /// (top-left, top-right, bottom-left, bottom-right). A short row tail reuses an overlapping
    /// group, which rewrites some windows with identical results.
    @inline(__always)
    static func pool2x2(
        _ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ arg: UnsafeMutablePointer<Int32>,
        w: Int, oh: Int, ow: Int
    ) {
        typealias F = SIMD8<Float>
        typealias I = SIMD8<Int32>
        let lanes = I(0, 2, 4, 6, 8, 10, 12, 14)
        for i in 0..<oh {
            let r0 = src + 2 * i * w
            let r1 = r0 + w
            let base = Int32(2 * i * w)
            if ow >= 8 {
                var j = 0
                while true {
                    let j0 = min(j, ow - 8)
                    let top = UnsafeRawPointer(r0 + 2 * j0).loadUnaligned(as: SIMD16<Float>.self)
                    let bottom = UnsafeRawPointer(r1 + 2 * j0).loadUnaligned(as: SIMD16<Float>.self)
                    var best: F = top.evenHalf
                    var idx = I(repeating: base + Int32(2 * j0)) &+ lanes
                    let first = base + Int32(2 * j0)
                    let tb = (top.oddHalf .> best) .| (top.oddHalf .!= top.oddHalf)
                    best.replace(with: top.oddHalf, where: tb)
                    idx.replace(with: I(repeating: first + 1) &+ lanes, where: tb)
                    let tc = (bottom.evenHalf .> best) .| (bottom.evenHalf .!= bottom.evenHalf)
                    best.replace(with: bottom.evenHalf, where: tc)
                    idx.replace(with: I(repeating: first + Int32(w)) &+ lanes, where: tc)
                    let td = (bottom.oddHalf .> best) .| (bottom.oddHalf .!= bottom.oddHalf)
                    best.replace(with: bottom.oddHalf, where: td)
                    idx.replace(with: I(repeating: first + Int32(w + 1)) &+ lanes, where: td)
                    UnsafeMutableRawPointer(dst + i * ow + j0).storeBytes(of: best, as: F.self)
                    UnsafeMutableRawPointer(arg + i * ow + j0).storeBytes(of: idx, as: I.self)
                    if j0 + 8 >= ow { break }
                    j += 8
                }
                continue
            }
            if ow >= 4 {
                pool2x2Narrow(r0, r1, dst + i * ow, arg + i * ow, base: base, w: w, ow: ow)
                continue
            }
            for j in 0..<ow {
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

    /// One output row of 4 to 7 windows (the CNN's second pooling layer has 7): `pool2x2`'s
    /// scheme four windows at a time, the second group overlapping the first.
    @inline(__always)
    static func pool2x2Narrow(
        _ r0: UnsafePointer<Float>, _ r1: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>,
        _ arg: UnsafeMutablePointer<Int32>, base: Int32, w: Int, ow: Int
    ) {
        typealias F = SIMD4<Float>
        typealias I = SIMD4<Int32>
        let lanes = I(0, 2, 4, 6)
        var j0 = 0
        while true {
            let top = UnsafeRawPointer(r0 + 2 * j0).loadUnaligned(as: SIMD8<Float>.self)
            let bottom = UnsafeRawPointer(r1 + 2 * j0).loadUnaligned(as: SIMD8<Float>.self)
            let first = base + Int32(2 * j0)
            var best: F = top.evenHalf
            var idx = I(repeating: first) &+ lanes
            @inline(__always) func consider(_ candidate: F, _ offset: Int) {
                let take = (candidate .> best) .| (candidate .!= candidate)
                best.replace(with: candidate, where: take)
                idx.replace(with: I(repeating: first + Int32(offset)) &+ lanes, where: take)
            }
            consider(top.oddHalf, 1)
            consider(bottom.evenHalf, w)
            consider(bottom.oddHalf, w + 1)
            UnsafeMutableRawPointer(dst + j0).storeBytes(of: best, as: F.self)
            UnsafeMutableRawPointer(arg + j0).storeBytes(of: idx, as: I.self)
            if j0 == ow - 4 { break }
            j0 = ow - 4
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

    public func dropTrainingCache() { inputShape = nil }

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
                argmax.withUnsafeBufferPointer { ap in
                    let (dBase, gBase, aBase) = (dxp.baseAddress!, gp.baseAddress!, ap.baseAddress!)
                    ComputeThreads.forEachRange(planes) { _, range in
                        for plane in range {
                            let dst = dBase + plane * inPlane
                            let src = gBase + plane * outPlane
                            let arg = aBase + plane * outPlane
                            // Zeroed plane by plane, so the scatter below finds it in L1.
                            dst.update(repeating: 0, count: inPlane)
                            for i in 0..<outPlane { dst[Int(arg[i])] += src[i] }
                        }
                    }
                }
            }
        }
        return inputGrad
    }
}
