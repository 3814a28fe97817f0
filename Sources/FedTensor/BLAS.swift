#if canImport(Accelerate)
    import Accelerate
#else
    import CBLAS
#endif
#if canImport(CDNNL)
    import CDNNL
#endif

/// Single-precision BLAS calls the engine uses, row-major, through the current `ComputeBackend`:
/// oneDNN's `dnnl_sgemm`, OpenBLAS, or Accelerate's identical CBLAS API on Apple platforms.
public enum BLAS {
    /// Whether a matrix operand is used as stored or transposed.
    public enum Transpose: Sendable {
        case none, transposed
        @usableFromInline var cblas: CBLAS_TRANSPOSE {
            self == .none ? CblasNoTrans : CblasTrans
        }
    }

    /// `C[m×n] = alpha · op(A)[m×k] · op(B)[k×n] + beta · C`, all row-major with leading
    /// dimensions `lda`, `ldb`, `ldc`, on one thread.
    public static func sgemm(
        _ transA: Transpose, _ transB: Transpose, m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        sgemm(
            transA, transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc,
            threads: 1)
    }

    private static func sgemm(
        _ transA: Transpose, _ transB: Transpose, m: Int, n: Int, k: Int,
        alpha: Float, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, threads: Int
    ) {
        precondition(m >= 0 && n >= 0 && k >= 0)
        if m == 0 || n == 0 { return }
        #if canImport(CDNNL)
            if ComputeBackend.current == .onednn {
                let status = fs_dnnl_sgemm(
                    Int32(threads), transA == .none ? 0 : 1, transB == .none ? 0 : 1, Int64(m), Int64(n), Int64(k),
                    alpha,
                    a, Int64(lda), b, Int64(ldb), beta, c, Int64(ldc))
                precondition(status == 0, "dnnl_sgemm failed: \(String(cString: fs_dnnl_status_string(status)))")
                return
            }
        #endif
        _ = singleThreadedLibrary
        cblas_sgemm(
            CblasRowMajor, transA.cblas, transB.cblas, Int32(m), Int32(n), Int32(k),
            alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// `y += alpha · x` over `n` elements.
    @inlinable
    public static func saxpy(n: Int, alpha: Float, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>) {
        _ = singleThreadedLibrary
        cblas_saxpy(Int32(n), alpha, x, 1, y, 1)
    }

    /// Number of threads BLAS uses for one call. Set it explicitly: the simulator wants 1 per
    /// worker, centralized training may use every core.
    /// The engine parallelises itself (`ComputeThreads`, and `sgemmParallel` for large
    /// products), so the BLAS library always runs single-threaded: its own pool threads would
    /// otherwise spin beside the engine's workers and fight them for the cores.
    public static func setThreads(_ n: Int) {
        precondition(n >= 1, "thread count must be at least 1")
        ComputeThreads.set(n)
        setLibraryThreads(1)
    }

    /// `sgemm` on `ComputeThreads.count` threads when the product is large enough to be worth
    /// it. oneDNN splits the work itself; with OpenBLAS each worker computes a disjoint block of
    /// `C` along the larger of `m` and `n`, so the result is the same as a single call.
    public static func sgemmParallel(
        _ transA: Transpose, _ transB: Transpose, m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        let threads = ComputeThreads.count
        if threads == 1 || m * n * k < 1 << 20 {
            return sgemm(
                transA, transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c,
                ldc: ldc)
        }
        if ComputeBackend.current == .onednn {
            return sgemm(
                transA, transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c,
                ldc: ldc, threads: threads)
        }
        if n >= m {
            // Column blocks of C (multiples of 16 keep the GEMM micro-kernel panels whole).
            let blocks = (n + 15) / 16
            ComputeThreads.forEachRange(min(blocks, threads)) { _, r in
                for part in r {
                    let range = ComputeThreads.splitRange(blocks, parts: min(blocks, threads), index: part)
                    let c0 = range.lowerBound * 16
                    let c1 = min(n, range.upperBound * 16)
                    guard c1 > c0 else { continue }
                    let bPart = transB == .none ? b + c0 : b + c0 * ldb
                    sgemm(
                        transA, transB, m: m, n: c1 - c0, k: k, alpha: alpha, a: a, lda: lda, b: bPart, ldb: ldb,
                        beta: beta, c: c + c0, ldc: ldc)
                }
            }
        } else {
            ComputeThreads.forEachRange(min(m, threads)) { _, r in
                for part in r {
                    let range = ComputeThreads.splitRange(m, parts: min(m, threads), index: part)
                    guard !range.isEmpty else { continue }
                    let r0 = range.lowerBound
                    let aPart = transA == .none ? a + r0 * lda : a + r0
                    sgemm(
                        transA, transB, m: range.count, n: n, k: k, alpha: alpha, a: aPart, lda: lda, b: b, ldb: ldb,
                        beta: beta, c: c + r0 * ldc, ldc: ldc)
                }
            }
        }
    }

    /// OpenBLAS starts with a thread per core; the engine parallelises itself, so the library is
    /// pinned to one thread before its first use, whether or not `setThreads` was ever called
    /// (otherwise results could depend on whether it was).
    @usableFromInline
    static let singleThreadedLibrary: Void = setLibraryThreads(1)

    static func setLibraryThreads(_ n: Int) {
        #if canImport(Accelerate)
            // Accelerate chooses its own threading.
        #else
            openblas_set_num_threads(Int32(n))
        #endif
    }

    /// Name of the current backend, its version and the kernels it selected for this CPU.
    public static var backendDescription: String {
        let backend = ComputeBackend.current
        return "\(backend) \(backend.version) isa=\(backend.isa)"
    }
}
