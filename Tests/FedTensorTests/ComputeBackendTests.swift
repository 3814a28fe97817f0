import Testing

@testable import FedTensor

/// Every compiled-in backend's GEMM against a Double reference, and how a backend is chosen.
@Suite struct ComputeBackendTests {
    struct Case: CustomStringConvertible, Sendable {
        var transA: BLAS.Transpose, transB: BLAS.Transpose
        var m: Int, n: Int, k: Int
        var alpha: Float, beta: Float
        /// Extra columns in every leading dimension (a sub-matrix of a wider buffer).
        var pad: Int
        var description: String { "\(transA)/\(transB) \(m)×\(n)×\(k) α=\(alpha) β=\(beta) pad \(pad)" }
    }

    /// Edge shapes (1, 15, 17, 33: not multiples of 16) and a random draw of larger ones.
    static let cases: [Case] = {
        var list: [Case] = []
        let transposes: [(BLAS.Transpose, BLAS.Transpose)] = [
            (.none, .none), (.none, .transposed), (.transposed, .none), (.transposed, .transposed),
        ]
        for (ta, tb) in transposes {
            for (m, n, k) in [(1, 1, 1), (1, 17, 5), (15, 1, 33), (17, 15, 1), (33, 64, 100)] {
                list.append(Case(transA: ta, transB: tb, m: m, n: n, k: k, alpha: 1, beta: 0, pad: 0))
            }
        }
        var rng = SeededRNG(seed: 11, stream: "gemm-shapes")
        for i in 0..<12 {
            let (ta, tb) = transposes[i % 4]
            list.append(
                Case(
                    transA: ta, transB: tb, m: 1 + rng.nextInt(below: 200), n: 1 + rng.nextInt(below: 300),
                    k: 1 + rng.nextInt(below: 400), alpha: [1, 0.5, -2][i % 3], beta: [0, 1, 0.25][i % 3],
                    pad: i % 2 * 3))
        }
        return list
    }()

    static func random(_ count: Int, seed: UInt64) -> [Float] {
        var rng = SeededRNG(seed: seed, stream: "gemm")
        return (0..<count).map { _ in rng.nextNormal() }
    }

    @Test(arguments: ComputeBackend.available, cases)
    func sgemmMatchesDoubleReference(backend: ComputeBackend, c: Case) {
        let (rowsA, colsA) = c.transA == .none ? (c.m, c.k) : (c.k, c.m)
        let (rowsB, colsB) = c.transB == .none ? (c.k, c.n) : (c.n, c.k)
        let (lda, ldb, ldc) = (colsA + c.pad, colsB + c.pad, c.n + c.pad)
        let a = Self.random(rowsA * lda, seed: 1)
        let b = Self.random(rowsB * ldb, seed: 2)
        var out = Self.random(c.m * ldc, seed: 3)
        let before = out
        func at(_ x: [Float], _ ld: Int, _ t: BLAS.Transpose, _ i: Int, _ j: Int) -> Double {
            Double(t == .none ? x[i * ld + j] : x[j * ld + i])
        }
        ComputeBackend.with(backend) {
            a.withUnsafeBufferPointer { ap in
                b.withUnsafeBufferPointer { bp in
                    out.withUnsafeMutableBufferPointer { cp in
                        BLAS.sgemm(
                            c.transA, c.transB, m: c.m, n: c.n, k: c.k, alpha: c.alpha, a: ap.baseAddress!, lda: lda,
                            b: bp.baseAddress!, ldb: ldb, beta: c.beta, c: cp.baseAddress!, ldc: ldc)
                    }
                }
            }
        }
        var worst = 0.0
        for i in 0..<c.m {
            for j in 0..<ldc {
                let index = i * ldc + j
                guard j < c.n else {
                    #expect(out[index] == before[index], "padding column \(j) of row \(i) was written")
                    continue
                }
                var dot = 0.0
                var magnitude = 0.0
                for p in 0..<c.k {
                    let term = at(a, lda, c.transA, i, p) * at(b, ldb, c.transB, p, j)
                    dot += term
                    magnitude += abs(term)
                }
                let expected = Double(c.alpha) * dot + Double(c.beta) * Double(before[index])
                let scale = abs(Double(c.alpha)) * magnitude + abs(Double(c.beta) * Double(before[index])) + 1e-30
                worst = max(worst, abs(Double(out[index]) - expected) / scale)
            }
        }
        // Relative to the sum of magnitudes: float32 accumulation over k terms stays far below this.
        #expect(worst <= 1e-5, "\(backend) \(c): worst relative error \(worst)")
    }

    @Test(arguments: ComputeBackend.available)
    func sgemmParallelEqualsOneCall(backend: ComputeBackend) {
        let (m, n, k) = (70, 300, 129)
        let a = Self.random(m * k, seed: 4)
        let b = Self.random(n * k, seed: 5)
        func product(threads: Int) -> [Float] {
            var c = [Float](repeating: 0, count: m * n)
            ComputeBackend.with(backend) {
                ComputeThreads.withThreads(threads) {
                    BLAS.sgemmParallel(.none, .transposed, m: m, n: n, k: k, a: a, lda: k, b: b, ldb: k, c: &c, ldc: n)
                }
            }
            return c
        }
        let one = product(threads: 1)
        let two = product(threads: 2)
        let worst = zip(one, two).map { abs($0 - $1) }.max() ?? 0
        #expect(worst <= 1e-4, "\(backend): 1 vs 2 threads differ by \(worst)")
        // The same backend and thread count gives the same bits every time.
        #expect(two == product(threads: 2))
    }

    @Test func backendNamesParseAndUnknownOnesAreRefused() throws {
        for backend in ComputeBackend.available {
            #expect(try ComputeBackend(validating: backend.rawValue.uppercased()) == backend)
            #expect(!backend.version.isEmpty && backend.version != "absent")
            #expect(!backend.isa.isEmpty && backend.isa != "absent")
        }
        let error = #expect(throws: BackendError.self) { try ComputeBackend(validating: "cuda") }
        #expect(error?.message.contains("onednn, openblas, accelerate") == true)
        for missing in ComputeBackend.allCases where !missing.isAvailable {
            let refused = #expect(throws: BackendError.self) { try ComputeBackend(validating: missing.rawValue) }
            #expect(refused?.message.contains("not in this build") == true)
        }
    }

    @Test func perThreadOverrideIsScopedToItsBody() {
        let outer = ComputeBackend.current
        for backend in ComputeBackend.available {
            ComputeBackend.with(backend) { #expect(ComputeBackend.current == backend) }
            #expect(ComputeBackend.current == outer)
        }
    }

    @Test func directConvolutionNamesItsImplementationsAndInferenceHasNoBackward() throws {
        guard ComputeBackend.onednn.isAvailable else { return }
        let geometry = ConvGeometry(channels: 32, height: 14, width: 14, kernelH: 5, kernelW: 5, padH: 2, padW: 2)
        func make(inference: Bool) throws -> DirectConvolution {
            try #require(
                DirectConvolution(
                    .init(
                        geometry: geometry, batch: 8, outChannels: 64, hasBias: true, inference: inference, threads: 1))
            )
        }
        let training = try make(inference: false).implementations
        #expect(!training.forward.isEmpty && !training.backwardData.isEmpty && !training.backwardWeights.isEmpty)
        let inference = try make(inference: true).implementations
        #expect(!inference.forward.isEmpty)
        #expect(inference.backwardData.isEmpty && inference.backwardWeights.isEmpty)
    }

    #if os(Linux) && arch(x86_64)
        @Test func oneDNNIsBuiltOnX8664Linux() {
            // scripts/install-deps.sh installs libdnnl-dev, so this build must have it; a build made
            // with FEDSWIFT_NO_ONEDNN=1 says so and skips the check.
            guard getenv("FEDSWIFT_NO_ONEDNN") == nil else { return }
            #expect(ComputeBackend.available.first == .onednn)
            #expect(ComputeBackend.onednn.version.hasPrefix("2.") || ComputeBackend.onednn.version.hasPrefix("3."))
        }
    #endif
}

#if canImport(Glibc)
    import Glibc
#endif
