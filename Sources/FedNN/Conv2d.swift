import FedTensor

/// 2-D convolution over NCHW input; weight `[out, in, kh, kw]`, bias `[out]` as in
/// `torch.nn.Conv2d` (groups = 1, dilation = 1).
///
/// Under the oneDNN backend every pass runs oneDNN's direct kernels (`DirectConvolution`, made
/// once per sub-batch size and thread count): a batch runs as sub-batches whose sizes are powers
/// of two, at most 64 and small enough for their input and output to stay in cache (8 for the
/// CNN's layers on one thread), so the odd last batches of federated clients reuse a few
/// primitives instead of compiling and holding one per size. Otherwise, and for shapes oneDNN
/// has no kernel for, each pass works through the mini-batch in chunks of samples whose im2col matrix
/// (`[in·kh·kw, chunk·OH·OW]`) fits in the L2 cache, with one `sgemm` per chunk: a large
/// convolution runs one sample at a time and writes its GEMM straight into the NCHW output, a
/// small one batches many samples into one wider GEMM. Backward recomputes the im2col of each
/// chunk (cheaper than streaming a batch-sized column matrix through memory). With more than
/// one compute thread, chunks are spread over the threads, each with its own workspace.
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
    private var geometry: ConvGeometry?
    private var input: Tensor?
    private var workspaces: [Workspace] = []
    private var output = Tensor(shape: [0])
    private var inputGrad = Tensor(shape: [0])
    /// oneDNN primitives per configuration (nil: oneDNN has none, use im2col), and the sub-batches
    /// (first sample, kernel) the last training forward ran.
    private var directKernels: [DirectConvolution.Configuration: DirectConvolution?] = [:]
    private var directForward: [(start: Int, kernel: DirectConvolution)] = []

    /// Floats of im2col per chunk: about half of a 1 MiB L2 cache.
    static let chunkBudget = 160 * 1024

    /// One worker's scratch memory.
    final class Workspace {
        var columns: UnsafeMutablePointer<Float>
        var columnCapacity: Int
        /// Channel-major GEMM output or gathered output gradient of a multi-sample chunk.
        var channelMajor: UnsafeMutablePointer<Float>
        var channelMajorCapacity: Int
        /// One zero-padded input sample (see `ConvGeometry.im2colPadded`).
        var padded: UnsafeMutablePointer<Float>
        var paddedCapacity: Int
        /// Private weight and bias gradient of workers other than the first.
        var gradient: UnsafeMutablePointer<Float>
        var gradientCount: Int

        init() {
            columns = .allocate(capacity: 1)
            columnCapacity = 1
            channelMajor = .allocate(capacity: 1)
            channelMajorCapacity = 1
            padded = .allocate(capacity: 1)
            paddedCapacity = 1
            gradient = .allocate(capacity: 1)
            gradientCount = 1
        }

        func reserve(columns c: Int, channelMajor m: Int, padded pad: Int, gradient g: Int) {
            if pad > paddedCapacity {
                padded.deallocate()
                padded = .allocate(capacity: pad)
                paddedCapacity = pad
            }
            if c > columnCapacity {
                columns.deallocate()
                columns = .allocate(capacity: c)
                columnCapacity = c
            }
            if m > channelMajorCapacity {
                channelMajor.deallocate()
                channelMajor = .allocate(capacity: m)
                channelMajorCapacity = m
            }
            if g != gradientCount {
                gradient.deallocate()
                gradient = .allocate(capacity: max(g, 1))
                gradientCount = g
            }
        }

        deinit {
            columns.deallocate()
            channelMajor.deallocate()
            padded.deallocate()
            gradient.deallocate()
        }
    }

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
            throw ModelError(
                .shapeMismatch, "Conv2d(\(inChannels), \(outChannels)) expects [N, \(inChannels), H, W], got \(input)")
        }
        let g = makeGeometry(input)
        guard g.isValid else {
            throw ModelError(
                .shapeMismatch, "Conv2d kernel \(kernelSize) does not fit input \(input) with padding \(padding)")
        }
        return [input[0], outChannels, g.outHeight, g.outWidth]
    }

    /// Samples per chunk, number of chunks, and the workers to spread them over.
    private func plan(batch n: Int, _ g: ConvGeometry) -> (chunk: Int, chunks: Int, workers: Int) {
        let perSample = g.columnRows * g.outPixels
        let chunk = max(1, min(n, Self.chunkBudget / max(perSample, 1)))
        let chunks = (n + chunk - 1) / chunk
        let workers = ComputeThreads.workers(for: chunks)
        let gradientCount = outChannels * g.columnRows + outChannels
        while workspaces.count < workers { workspaces.append(Workspace()) }
        for w in workspaces.prefix(workers) {
            w.reserve(
                columns: g.columnRows * chunk * g.outPixels,
                channelMajor: chunk > 1 ? outChannels * chunk * g.outPixels : 0,
                padded: g.paddedSize, gradient: gradientCount)
        }
        return (chunk, chunks, workers)
    }

    /// Whether the last forward ran oneDNN's kernels (tests check the path they meant to).
    var usesDirectKernels: Bool { lastForwardWasDirect }
    private var lastForwardWasDirect = false

    /// Largest sub-batch one primitive runs.
    static let directBatchLimit = 64
    /// Floats of input and output one sub-batch may span per compute thread: about half of a
    /// 2 MiB L2 cache, so the reorders after a convolution read what it just wrote while it is
    /// still cached (measured side by side: +4 % for the CNN's training step on one thread).
    static let directBudget = 256 * 1024

    /// The sub-batches of a batch of `n` and their oneDNN primitives (made on first use), or nil
    /// when oneDNN is not the backend or lacks a kernel for one of them.
    private func directPlan(
        batch n: Int, _ g: ConvGeometry, training: Bool
    ) -> [(start: Int, kernel: DirectConvolution)]? {
        guard ComputeBackend.current == .onednn else { return nil }
        let perSample = inChannels * g.height * g.width + outChannels * g.outPixels
        var limit = Self.directBatchLimit
        while limit > 1 && limit * perSample > Self.directBudget * ComputeThreads.count { limit /= 2 }
        var plan: [(start: Int, kernel: DirectConvolution)] = []
        var start = 0
        while start < n {
            var size = limit
            while size > n - start { size /= 2 }
            let configuration = DirectConvolution.Configuration(
                geometry: g, batch: size, outChannels: outChannels, hasBias: hasBias, inference: !training,
                threads: ComputeThreads.count)
            let kernel: DirectConvolution?
            if let cached = directKernels[configuration] {
                kernel = cached
            } else {
                // Powers of two up to the limit, for training and for inference: at most 14. A layer
                // fed ever-new input sizes starts over.
                if directKernels.count >= 16 { directKernels.removeAll() }
                kernel = DirectConvolution(configuration)
                directKernels[configuration] = kernel
            }
            guard let kernel else { return nil }
            plan.append((start, kernel))
            start += size
        }
        return plan
    }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        if geometry?.height != x.shape[2] || geometry?.width != x.shape[3] {
            geometry = makeGeometry(x.shape)
        }
        let g = geometry!
        let n = x.shape[0]
        directForward = []
        lastForwardWasDirect = false
        if let plan = directPlan(batch: n, g, training: training) {
            lastForwardWasDirect = true
            output.prepareForOverwrite(shape: [n, outChannels, g.outHeight, g.outWidth])
            let (inSample, outSample) = (inChannels * g.height * g.width, outChannels * g.outPixels)
            x.withUnsafeBufferPointer { xp in
                output.withUnsafeMutableBufferPointer { op in
                    for (start, kernel) in plan {
                        kernel.forward(
                            input: xp.baseAddress! + start * inSample, weight: weight,
                            bias: bias.map { UnsafePointer($0) },
                            output: op.baseAddress! + start * outSample)
                    }
                }
            }
            input = training ? x : nil
            if training { directForward = plan }
            return output
        }
        let (chunk, chunks, _) = plan(batch: n, g)
        output.prepareForOverwrite(shape: [n, outChannels, g.outHeight, g.outWidth])
        let (p, k, cout) = (g.outPixels, g.columnRows, outChannels)
        let sampleSize = inChannels * g.height * g.width
        let (w, b) = (weight!, bias)
        let ws = workspaces
        x.withUnsafeBufferPointer { xp in
            output.withUnsafeMutableBufferPointer { op in
                let (src, dst) = (xp.baseAddress!, op.baseAddress!)
                ComputeThreads.forEachRange(chunks) { worker, range in
                    let space = ws[worker]
                    for c in range {
                        let s0 = c * chunk
                        let m = min(chunk, n - s0)
                        let cols = m * p
                        for s in 0..<m {
                            g.im2colPadded(
                                input: src + (s0 + s) * sampleSize, scratch: space.padded, col: space.columns + s * p,
                                ldcol: cols)
                        }
                        if m == 1 {
                            let out = dst + s0 * cout * p
                            if let b {
                                for ch in 0..<cout { (out + ch * p).update(repeating: b[ch], count: p) }
                            }
                            BLAS.sgemm(
                                .none, .none, m: cout, n: p, k: k, a: w, lda: k, b: space.columns, ldb: p,
                                beta: b == nil ? 0 : 1, c: out, ldc: p)
                        } else {
                            BLAS.sgemm(
                                .none, .none, m: cout, n: cols, k: k, a: w, lda: k, b: space.columns, ldb: cols,
                                c: space.channelMajor, ldc: cols)
                            for s in 0..<m {
                                for ch in 0..<cout {
                                    let from = space.channelMajor + ch * cols + s * p
                                    let to = dst + ((s0 + s) * cout + ch) * p
                                    let bc = b?[ch] ?? 0
                                    for i in 0..<p { to[i] = from[i] + bc }
                                }
                            }
                        }
                    }
                }
            }
        }
        input = training ? x : nil
        return output
    }

    public func dropTrainingCache() { input = nil }

    public func backward(_ dy: Tensor, needsInputGradient: Bool) -> Tensor {
        guard let x = input, let g = geometry else { preconditionFailure("Conv2d.backward without a training forward") }
        input = nil
        let n = x.shape[0]
        let computeParameters = !isFrozen
        if needsInputGradient { inputGrad.prepareForOverwrite(shape: x.shape) }
        let dxBase: UnsafeMutablePointer<Float>? =
            needsInputGradient ? inputGrad.withUnsafeMutableBufferPointer { $0.baseAddress! } : nil
        let direct = directForward
        directForward = []
        guard computeParameters || needsInputGradient else { return noGradient }
        if !direct.isEmpty {
            let (inSample, outSample) = (inChannels * g.height * g.width, outChannels * g.outPixels)
            x.withUnsafeBufferPointer { xp in
                dy.withUnsafeBufferPointer { dyp in
                    for (start, kernel) in direct {
                        kernel.backward(
                            input: xp.baseAddress! + start * inSample, weight: weight,
                            outputGradient: dyp.baseAddress! + start * outSample,
                            inputGradient: dxBase.map { $0 + start * inSample },
                            weightGradient: computeParameters ? weightGrad : nil,
                            biasGradient: computeParameters ? biasGrad : nil)
                    }
                }
            }
            return needsInputGradient ? inputGrad : noGradient
        }
        let (chunk, chunks, workers) = plan(batch: n, g)
        let (p, k, cout) = (g.outPixels, g.columnRows, outChannels)
        let sampleSize = inChannels * g.height * g.width
        let (w, wGrad, bGrad) = (weight!, weightGrad!, biasGrad)
        let ws = workspaces
        let hasBias = self.hasBias
        x.withUnsafeBufferPointer { xp in
            dy.withUnsafeBufferPointer { dyp in
                let (src, gy) = (xp.baseAddress!, dyp.baseAddress!)
                ComputeThreads.forEachRange(chunks) { worker, range in
                    let space = ws[worker]
                    // Worker 0 adds straight into the model's gradient; the others into their own.
                    let dW = worker == 0 ? wGrad : space.gradient
                    let dB = worker == 0 ? bGrad : (hasBias ? space.gradient + cout * k : nil)
                    if worker != 0 { space.gradient.update(repeating: 0, count: space.gradientCount) }
                    for c in range {
                        let s0 = c * chunk
                        let m = min(chunk, n - s0)
                        let cols = m * p
                        // Output gradient of the chunk as [out, m·P].
                        let grad: UnsafePointer<Float>
                        if m == 1 {
                            grad = UnsafePointer(gy + s0 * cout * p)
                        } else {
                            for s in 0..<m {
                                for ch in 0..<cout {
                                    (space.channelMajor + ch * cols + s * p).update(
                                        from: gy + ((s0 + s) * cout + ch) * p, count: p)
                                }
                            }
                            grad = UnsafePointer(space.channelMajor)
                        }
                        if computeParameters {
                            for s in 0..<m {
                                g.im2colPadded(
                                    input: src + (s0 + s) * sampleSize, scratch: space.padded,
                                    col: space.columns + s * p, ldcol: cols)
                            }
                            BLAS.sgemm(
                                .none, .transposed, m: cout, n: k, k: cols, a: grad, lda: cols, b: space.columns,
                                ldb: cols, beta: 1, c: dW, ldc: k)
                            if let dB {
                                for ch in 0..<cout {
                                    var acc: Float = 0
                                    let row = grad + ch * cols
                                    for i in 0..<cols { acc += row[i] }
                                    dB[ch] += acc
                                }
                            }
                        }
                        if let dx = dxBase {
                            BLAS.sgemm(
                                .transposed, .none, m: k, n: cols, k: cout, a: w, lda: k, b: grad, ldb: cols,
                                c: space.columns, ldc: cols)
                            for s in 0..<m {
                                g.col2imPadded(
                                    col: space.columns + s * p, ldcol: cols, scratch: space.padded,
                                    inputGrad: dx + (s0 + s) * sampleSize)
                            }
                        }
                    }
                }
            }
        }
        if computeParameters {
            // Fixed order: results depend on the thread count only.
            for worker in 1..<max(workers, 1) {
                let src = ws[worker].gradient
                for i in 0..<(cout * k) { wGrad[i] += src[i] }
                if let bGrad { for i in 0..<cout { bGrad[i] += src[cout * k + i] } }
            }
        }
        return needsInputGradient ? inputGrad : noGradient
    }
}
