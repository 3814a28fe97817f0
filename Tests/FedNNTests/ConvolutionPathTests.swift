import FedTensor
import Testing

@testable import FedNN

/// Conv2d's execution paths — multi-sample chunks, one-sample chunks written straight to NCHW,
/// and several worker threads — all agree with a direct six-loop convolution.
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
        return Reference(out: out.map(Float.init), dx: dx.map(Float.init), dw: dw.map(Float.init), db: db.map(Float.init))
    }

    func compare(_ a: [Float], _ b: [Float], _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(a.count == b.count, "\(what) count", sourceLocation: sourceLocation)
        let scale = max(1, b.map(abs).max() ?? 1)
        let worst = zip(a, b).map { abs($0 - $1) }.max() ?? 0
        #expect(worst <= 2e-5 * scale, "\(what): max |Δ| \(worst)", sourceLocation: sourceLocation)
    }

    func run(cin: Int, cout: Int, k: Int, stride: Int, pad: Int, input: Shape, threads: Int) throws {
        try ComputeThreads.withThreads(threads) { try check(cin: cin, cout: cout, k: k, stride: stride, pad: pad, input: input) }
    }

    func check(cin: Int, cout: Int, k: Int, stride: Int, pad: Int, input: Shape) throws {
        let conv = Conv2d(cin, cout, kernelSize: k, stride: stride, padding: pad)
        let model = try Model(conv, inputShape: Shape(Array(input.dims.dropFirst())), seed: 5)
        let x = randomTensor(input, seed: 6)
        let y = model.forward(x, training: true)
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
