import FedTensor
import FedTestSupport
import Testing

@testable import FedNN

/// Conv2d's execution paths — oneDNN's direct kernels, and im2col with multi-sample chunks,
/// one-sample chunks written straight to NCHW, and several worker threads — all agree with a
/// direct six-loop convolution, on every compiled-in backend.
@Suite(.serialized) struct ConvolutionPathTests {
    struct Reference {
        var out: [Float], dx: [Float], dw: [Float], db: [Float]
    }

    /// Direct convolution and its gradients for upstream gradient `g`, in Double.
    func direct(x: Tensor, w: Tensor, b: Tensor, g: Tensor, stride: Int, pad: Int) -> Reference {
        let (n, cin, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (cout, k) = (w.shape[0], w.shape[2])
        let oh = (h + 2 * pad - k) / stride + 1
        let ow = (wd + 2 * pad - k) / stride + 1
        let (xs, ws, gs) = (x.scalars, w.scalars, g.scalars)
        var out = [Double](repeating: 0, count: n * cout * oh * ow)
        var dx = [Double](repeating: 0, count: xs.count)
        var dw = [Double](repeating: 0, count: ws.count)
        var db = [Double](repeating: 0, count: cout)
        for s in 0..<n {
            for o in 0..<cout {
                for i in 0..<oh {
                    for j in 0..<ow {
                        let oi = ((s * cout + o) * oh + i) * ow + j
                        var acc = Double(b[o])
                        let go = Double(gs[oi])
                        db[o] += go
                        for c in 0..<cin {
                            for u in 0..<k {
                                for v in 0..<k {
                                    let y = i * stride - pad + u
                                    let xx = j * stride - pad + v
                                    guard y >= 0, y < h, xx >= 0, xx < wd else { continue }
                                    let xi = ((s * cin + c) * h + y) * wd + xx
                                    let wi = ((o * cin + c) * k + u) * k + v
                                    acc += Double(xs[xi]) * Double(ws[wi])
                                    dx[xi] += go * Double(ws[wi])
                                    dw[wi] += go * Double(xs[xi])
                                }
                            }
                        }
                        out[oi] = acc
                    }
                }
            }
        }
        return Reference(
            out: out.map(Float.init), dx: dx.map(Float.init), dw: dw.map(Float.init), db: db.map(Float.init))
    }

    func compare(_ a: [Float], _ b: [Float], _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(a.count == b.count, "\(what) count", sourceLocation: sourceLocation)
        let closeness = Closeness(a, b)
        #expect(closeness.isWithin(2e-5), "\(what): \(closeness)", sourceLocation: sourceLocation)
    }

    func run(
        cin: Int, cout: Int, k: Int, stride: Int, pad: Int, input: Shape, threads: Int,
        backend: ComputeBackend = ComputeBackend.available.last!
    ) throws {
        try ComputeBackend.with(backend) {
            try ComputeThreads.withThreads(threads) {
                try check(cin: cin, cout: cout, k: k, stride: stride, pad: pad, input: input)
            }
        }
    }

    func check(cin: Int, cout: Int, k: Int, stride: Int, pad: Int, input: Shape) throws {
        let conv = Conv2d(cin, cout, kernelSize: k, stride: stride, padding: pad)
        let model = try Model(conv, inputShape: Shape(Array(input.dims.dropFirst())), seed: 5)
        let x = randomTensor(input, seed: 6)
        let y = model.forward(x, training: true)
        #expect(
            conv.usesDirectKernels == (ComputeBackend.current == .onednn),
            "direct kernels under \(ComputeBackend.current)")
        let g = randomTensor(y.shape, seed: 7)
        model.parameters.zeroGradients()
        let dx = model.backwardWithInputGradient(g)
        let ref = direct(
            x: x, w: model.parameters.tensor(named: "weight")!, b: model.parameters.tensor(named: "bias")!, g: g,
            stride: stride, pad: pad)
        compare(y.scalars, ref.out, "output")
        compare(dx.scalars, ref.dx, "input gradient")
        compare(model.parameters.gradient(named: "weight")!.scalars, ref.dw, "weight gradient")
        compare(model.parameters.gradient(named: "bias")!.scalars, ref.db, "bias gradient")
        // Gradients accumulate: a second pass over the same batch doubles them.
        _ = model.forward(x, training: true)
        _ = model.backwardWithInputGradient(g)
        compare(
            model.parameters.gradient(named: "weight")!.scalars, ref.dw.map { 2 * $0 }, "accumulated weight gradient")
        compare(model.parameters.gradient(named: "bias")!.scalars, ref.db.map { 2 * $0 }, "accumulated bias gradient")
        // Inference runs its own primitives and gives the training forward's output.
        compare(model.forward(x, training: false).scalars, ref.out, "inference output")
    }

    /// Edge shapes for every backend: 1×1 kernels, stride 2, padding, batch 1, channel counts and
    /// sizes that are not multiples of 16, a single input channel (the first layer's case), and
    /// the FedAvg CNN's two layers.
    static let edgeShapes: [(cin: Int, cout: Int, k: Int, stride: Int, pad: Int, input: Shape)] = [
        (3, 5, 1, 1, 0, [2, 3, 7, 9]),
        (17, 33, 1, 2, 0, [1, 17, 10, 11]),
        (1, 32, 5, 1, 2, [2, 1, 28, 28]),
        (32, 64, 5, 1, 2, [2, 32, 14, 14]),
        (5, 7, 3, 2, 1, [1, 5, 13, 12]),
        (6, 19, 3, 2, 0, [3, 6, 8, 9]),
        (2, 3, 4, 3, 2, [2, 2, 10, 7]),
        (20, 18, 3, 1, 1, [1, 20, 5, 5]),
        // 70 = 64 + 4 + 2: sub-batches of three sizes under oneDNN.
        (2, 3, 3, 1, 1, [70, 2, 6, 6]),
    ]

    @Test(arguments: ComputeBackend.available, 0..<edgeShapes.count)
    func edgeShapesAgreeWithDirectLoops(backend: ComputeBackend, index: Int) throws {
        let e = Self.edgeShapes[index]
        try run(
            cin: e.cin, cout: e.cout, k: e.k, stride: e.stride, pad: e.pad, input: e.input, threads: 1, backend: backend
        )
    }

    @Test(arguments: ComputeBackend.available)
    func twoThreadsAgreeWithDirectLoops(backend: ComputeBackend) throws {
        try run(cin: 32, cout: 20, k: 5, stride: 1, pad: 2, input: [4, 32, 14, 14], threads: 2, backend: backend)
    }

    @Test(arguments: ComputeBackend.available)
    func frozenLayerLeavesParameterGradientsAlone(backend: ComputeBackend) throws {
        try ComputeBackend.with(backend) {
            let conv = Conv2d(4, 6, kernelSize: 3, padding: 1)
            let model = try Model(conv, inputShape: [4, 9, 9], seed: 5)
            conv.isFrozen = true
            let x = randomTensor([2, 4, 9, 9], seed: 6)
            let g = randomTensor(try conv.outputShape(for: x.shape), seed: 7)
            model.parameters.zeroGradients()
            _ = model.forward(x, training: true)
            let dx = model.backwardWithInputGradient(g)
            let ref = direct(
                x: x, w: model.parameters.tensor(named: "weight")!, b: model.parameters.tensor(named: "bias")!, g: g,
                stride: 1, pad: 1)
            compare(dx.scalars, ref.dx, "input gradient")
            #expect(model.parameters.gradient(named: "weight")!.scalars.allSatisfy { $0 == 0 })
            #expect(model.parameters.gradient(named: "bias")!.scalars.allSatisfy { $0 == 0 })
        }
    }

    @Test(arguments: [1, 2, 3])
    func oneSampleChunks(threads: Int) throws {
        // in·k·k · OH·OW = 32·25·196 > half the chunk budget: one sample per chunk, GEMM straight into NCHW.
        #expect(32 * 25 * 196 * 2 > Conv2d.chunkBudget)
        try run(cin: 32, cout: 6, k: 5, stride: 1, pad: 2, input: [3, 32, 14, 14], threads: threads)
    }

    @Test(arguments: [1, 2])
    func multiSampleChunks(threads: Int) throws {
        try run(cin: 2, cout: 5, k: 3, stride: 1, pad: 1, input: [7, 2, 9, 8], threads: threads)
    }

    @Test(arguments: [1, 2])
    func stridedWithoutPaddedFastPath(threads: Int) throws {
        try run(cin: 3, cout: 4, k: 3, stride: 2, pad: 1, input: [5, 3, 11, 10], threads: threads)
    }
}
