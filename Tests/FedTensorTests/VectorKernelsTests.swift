import Testing

@testable import FedTensor

/// The SIMD reductions and normalisation kernels against plain loops in Double, at lengths that
/// hit the 8- and 16-wide bodies, their scalar tails and the 256-element chunk edges.
@Suite struct VectorKernelsTests {
    static let lengths = [0, 1, 7, 8, 15, 16, 17, 31, 255, 256, 257, 511, 1000, 4099]

    /// Seeded values around `offset`, so a large mean tests the deviations' accuracy.
    func values(_ n: Int, seed: UInt64, offset: Float = 0) -> [Float] {
        var rng = SeededRNG(seed: seed, stream: "vector-kernels")
        return (0..<n).map { _ in offset + rng.nextNormal() }
    }

    @Test(arguments: lengths)
    func reductionsMatchDoubleLoops(n: Int) {
        let x = values(n, seed: UInt64(n), offset: 100)
        let y = values(n, seed: UInt64(n) + 1)
        let magnitude = x.reduce(0) { $0 + Double(abs($1)) } + 1
        let exactSum = x.reduce(0) { $0 + Double($1) }
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeBufferPointer { yp in
                let (px, py) = (
                    xp.baseAddress ?? UnsafePointer(bitPattern: 16)!, yp.baseAddress ?? UnsafePointer(bitPattern: 16)!
                )
                #expect(abs(VectorKernels.sum(px, n) - exactSum) <= 1e-6 * magnitude)
                let mean = Float(exactSum / Double(max(n, 1)))
                let exactSquares = x.reduce(0) { $0 + Double($1 - mean) * Double($1 - mean) }
                let squares = VectorKernels.sumOfSquaredDeviations(px, n, from: mean)
                #expect(abs(squares - exactSquares) <= 1e-5 * (exactSquares + 1))
                let (s, d) = VectorKernels.sumAndDot(py, px, n)
                let exactDot = zip(x, y).reduce(0) { $0 + Double($1.0) * Double($1.1) }
                let yMagnitude = y.reduce(0) { $0 + Double(abs($1)) } + 1
                #expect(abs(s - y.reduce(0) { $0 + Double($1) }) <= 1e-6 * yMagnitude)
                #expect(abs(d - exactDot) <= 1e-6 * yMagnitude * 101)
            }
        }
    }

    @Test(arguments: lengths)
    func normalizeMatchesItsFormulaWithAndWithoutTheNormalizedCopy(n: Int) {
        let x = values(n, seed: 7 + UInt64(n), offset: 3)
        let (mean, inv, scale, shift): (Float, Float, Float, Float) = (2.75, 0.8, -1.5, 0.25)
        var normalized = [Float](repeating: .nan, count: n)
        var kept = [Float](repeating: .nan, count: n)
        var alone = [Float](repeating: .nan, count: n)
        x.withUnsafeBufferPointer { xp in
            normalized.withUnsafeMutableBufferPointer { np in
                kept.withUnsafeMutableBufferPointer { kp in
                    alone.withUnsafeMutableBufferPointer { ap in
                        guard let px = xp.baseAddress else { return }
                        VectorKernels.normalize(
                            px, normalized: np.baseAddress!, output: kp.baseAddress!, n, mean: mean, invStd: inv,
                            scale: scale, shift: shift)
                        VectorKernels.normalize(
                            px, normalized: nil, output: ap.baseAddress!, n, mean: mean, invStd: inv, scale: scale,
                            shift: shift)
                    }
                }
            }
        }
        #expect(normalized == x.map { ($0 - mean) * inv })
        #expect(kept == x.map { ($0 - mean) * inv * scale + shift })
        // Training and inference give the same output, bit for bit.
        #expect(alone == kept)
    }

    @Test(arguments: lengths)
    func addIntoAThirdBufferIsElementwise(n: Int) {
        let (a, b) = (values(n, seed: 17 + UInt64(n)), values(n, seed: 19 + UInt64(n)))
        var y = [Float](repeating: .nan, count: n + 1)
        a.withUnsafeBufferPointer { ap in
            b.withUnsafeBufferPointer { bp in
                y.withUnsafeMutableBufferPointer { yp in
                    guard n > 0 else { return }
                    VectorKernels.add(ap.baseAddress!, bp.baseAddress!, into: yp.baseAddress!, n)
                }
            }
        }
        #expect(Array(y[0..<n]) == zip(a, b).map { $0 + $1 })
        #expect(y[n].isNaN)  // nothing written past n
    }

    @Test(arguments: lengths)
    func normalizeBackwardMatchesItsFormula(n: Int) {
        let dy = values(n, seed: 11 + UInt64(n))
        let v = values(n, seed: 13 + UInt64(n))
        let (inv, scale, a, b): (Float, Float, Float, Float) = (1.25, 0.5, 0.125, -0.375)
        var dx = [Float](repeating: .nan, count: n)
        dy.withUnsafeBufferPointer { gp in
            v.withUnsafeBufferPointer { vp in
                dx.withUnsafeMutableBufferPointer { dp in
                    guard n > 0 else { return }
                    VectorKernels.normalizeBackward(
                        gradient: gp.baseAddress!, normalized: vp.baseAddress!, result: dp.baseAddress!, n,
                        invStd: inv, scale: scale, a: a, b: b)
                }
            }
        }
        #expect(dx == zip(dy, v).map { inv * ($0 * scale - a - $1 * b) })
    }
}
