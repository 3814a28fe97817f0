import FedTensor

/// 2-D convolution over NCHW input; weight `[out, in, kh, kw]`, bias `[out]` as in
/// `torch.nn.Conv2d` (groups = 1, dilation = 1).
///
/// The whole mini-batch goes through one im2col and one `sgemm` per pass: the column matrix
/// `[in·kh·kw, N·OH·OW]` times the weight gives `[out, N·OH·OW]`, which is then scattered to NCHW
/// with the bias added.
public final class Conv2d: Layer {
    public let inChannels, outChannels: Int
    public let kernelSize: (Int, Int)
    public let stride: (Int, Int)
    public let padding: (Int, Int)
    public let hasBias: Bool
    public var isFrozen = false
    private var weight: UnsafeMutablePointer<Float>!
    private var weightGrad: UnsafeMutablePointer<Float>!
    private var bias: UnsafeMutablePointer<Float>?
    private var biasGrad: UnsafeMutablePointer<Float>?
    private var inputShape: Shape?
    private var geometry: ConvGeometry?
    /// im2col of the last input; holds the column gradient during backward.
    private var columns = Tensor(shape: [0])
    /// GEMM output `[out, N·P]` in forward, the reordered output gradient in backward.
    private var channelMajor = Tensor(shape: [0])
    private var output = Tensor(shape: [0])
    private var inputGrad = Tensor(shape: [0])

    public init(
        _ inChannels: Int, _ outChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0, bias: Bool = true
    ) {
        precondition(inChannels > 0 && outChannels > 0 && kernelSize > 0 && stride > 0 && padding >= 0)
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernelSize = (kernelSize, kernelSize)
        self.stride = (stride, stride)
        self.padding = (padding, padding)
        self.hasBias = bias
    }

    private var fanIn: Int { inChannels * kernelSize.0 * kernelSize.1 }

    public var parameterSpecs: [ParameterSpec] {
        let initializer = Initializer.pytorchDefault(fanIn: fanIn)
        var specs = [ParameterSpec("weight", [outChannels, inChannels, kernelSize.0, kernelSize.1], initializer)]
        if hasBias { specs.append(ParameterSpec("bias", [outChannels], initializer)) }
        return specs
    }

    public func bind(parameters: ParameterBinding, buffers: ParameterBinding) {
        weight = parameters.values[0]
        weightGrad = parameters.gradients[0]
        if hasBias {
            bias = parameters.values[1]
            biasGrad = parameters.gradients[1]
        }
    }

    private func makeGeometry(_ input: Shape) -> ConvGeometry {
        ConvGeometry(
            channels: inChannels, height: input[2], width: input[3], kernelH: kernelSize.0, kernelW: kernelSize.1,
            strideH: stride.0, strideW: stride.1, padH: padding.0, padW: padding.1)
    }

    public func outputShape(for input: Shape) throws -> Shape {
        guard input.rank == 4, input[1] == inChannels else {
            throw ModelError(.shapeMismatch, "Conv2d(\(inChannels), \(outChannels)) expects [N, \(inChannels), H, W], got \(input)")
        }
        let g = makeGeometry(input)
        guard g.isValid else {
            throw ModelError(.shapeMismatch, "Conv2d kernel \(kernelSize) does not fit input \(input) with padding \(padding)")
        }
        return [input[0], outChannels, g.outHeight, g.outWidth]
    }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        if geometry?.height != x.shape[2] || geometry?.width != x.shape[3] {
            geometry = makeGeometry(x.shape)
        }
        let g = geometry!
        let n = x.shape[0]
        let p = g.outPixels
        let k = g.columnRows
        let cols = n * p
        let cout = outChannels
        columns.prepareForOverwrite(shape: [k, cols])
        channelMajor.prepareForOverwrite(shape: [cout, cols])
        output.prepareForOverwrite(shape: [n, cout, g.outHeight, g.outWidth])
        let sampleSize = inChannels * g.height * g.width
        x.withUnsafeBufferPointer { xp in
            columns.withUnsafeMutableBufferPointer { cp in
                for s in 0..<n {
                    g.im2col(input: xp.baseAddress! + s * sampleSize, col: cp.baseAddress! + s * p, ldcol: cols)
                }
                channelMajor.withUnsafeMutableBufferPointer { yp in
                    BLAS.sgemm(
                        .none, .none, m: cout, n: cols, k: k, a: weight, lda: k, b: cp.baseAddress!, ldb: cols,
                        c: yp.baseAddress!, ldc: cols)
                }
            }
        }
        let b = bias
        channelMajor.withUnsafeBufferPointer { yp in
            output.withUnsafeMutableBufferPointer { op in
                for s in 0..<n {
                    for c in 0..<cout {
                        let src = yp.baseAddress! + c * cols + s * p
                        let dst = op.baseAddress! + (s * cout + c) * p
                        if let b {
                            let bc = b[c]
                            for i in 0..<p { dst[i] = src[i] + bc }
                        } else {
                            dst.update(from: src, count: p)
                        }
                    }
                }
            }
        }
        inputShape = training ? x.shape : nil
        return output
    }

    public func backward(_ dy: Tensor, needsInputGradient: Bool) -> Tensor {
        guard let xShape = inputShape, let g = geometry else {
            preconditionFailure("Conv2d.backward without a training forward")
        }
        inputShape = nil
        let n = xShape[0]
        let p = g.outPixels
        let k = g.columnRows
        let cols = n * p
        let cout = outChannels
        // Output gradient NCHW -> [out, N·P] so both products below are single GEMMs.
        dy.withUnsafeBufferPointer { dp in
            channelMajor.withUnsafeMutableBufferPointer { yp in
                for s in 0..<n {
                    for c in 0..<cout {
                        (yp.baseAddress! + c * cols + s * p).update(from: dp.baseAddress! + (s * cout + c) * p, count: p)
                    }
                }
            }
        }
        channelMajor.withUnsafeBufferPointer { yp in
            let gy = yp.baseAddress!
            if !isFrozen {
                if let bg = biasGrad {
                    for c in 0..<cout {
                        var acc: Float = 0
                        let row = gy + c * cols
                        for i in 0..<cols { acc += row[i] }
                        bg[c] += acc
                    }
                }
                columns.withUnsafeBufferPointer { cp in
                    BLAS.sgemm(
                        .none, .transposed, m: cout, n: k, k: cols, a: gy, lda: cols, b: cp.baseAddress!, ldb: cols,
                        beta: 1, c: weightGrad, ldc: k)
                }
            }
            guard needsInputGradient else { return }
            // The column matrix is no longer needed: reuse it for the column gradient.
            columns.withUnsafeMutableBufferPointer { cp in
                BLAS.sgemm(
                    .transposed, .none, m: k, n: cols, k: cout, a: weight, lda: k, b: gy, ldb: cols,
                    c: cp.baseAddress!, ldc: cols)
            }
        }
        guard needsInputGradient else { return noGradient }
        inputGrad.prepareForOverwrite(shape: xShape)
        let sampleSize = inChannels * g.height * g.width
        columns.withUnsafeBufferPointer { cp in
            inputGrad.withUnsafeMutableBufferPointer { dxp in
                dxp.update(repeating: 0)
                for s in 0..<n {
                    g.col2im(col: cp.baseAddress! + s * p, ldcol: cols, inputGrad: dxp.baseAddress! + s * sampleSize)
                }
            }
        }
        return inputGrad
    }
}
