#if canImport(Accelerate)
import Accelerate
#else
import CBLAS
#endif

/// Single-precision BLAS calls the engine uses, row-major. OpenBLAS on Linux, Accelerate's
/// identical CBLAS API on Apple platforms.
public enum BLAS {
    /// Whether a matrix operand is used as stored or transposed.
    public enum Transpose: Sendable {
        case none, transposed
        @usableFromInline var cblas: CBLAS_TRANSPOSE {
            self == .none ? CblasNoTrans : CblasTrans
        }
    }

    /// `C[m×n] = alpha · op(A)[m×k] · op(B)[k×n] + beta · C`, all row-major with leading
    /// dimensions `lda`, `ldb`, `ldc`.
    @inlinable
    public static func sgemm(
        _ transA: Transpose, _ transB: Transpose, m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        precondition(m >= 0 && n >= 0 && k >= 0)
        if m == 0 || n == 0 { return }
        cblas_sgemm(
            CblasRowMajor, transA.cblas, transB.cblas, Int32(m), Int32(n), Int32(k),
            alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// `y += alpha · x` over `n` elements.
    @inlinable
    public static func saxpy(n: Int, alpha: Float, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>) {
        cblas_saxpy(Int32(n), alpha, x, 1, y, 1)
    }

    /// Number of threads BLAS uses for one call. Set it explicitly: the simulator wants 1 per
    /// worker, centralized training may use every core.
    /// Also sets `ComputeThreads.count`, the budget of the engine's own parallel loops.
    public static func setThreads(_ n: Int) {
        precondition(n >= 1, "thread count must be at least 1")
        ComputeThreads.set(n)
        setLibraryThreads(n)
    }

    static func setLibraryThreads(_ n: Int) {
        #if canImport(Accelerate)
        // Accelerate chooses its own threading.
        #else
        openblas_set_num_threads(Int32(n))
        #endif
    }

    /// Name of the BLAS backend and the kernel it selected for this CPU.
    public static var backendDescription: String {
        #if canImport(Accelerate)
        return "Accelerate"
        #else
        let config = String(cString: openblas_get_config())
        let core = String(cString: openblas_get_corename())
        return "OpenBLAS \(config) core=\(core)"
        #endif
    }
}
