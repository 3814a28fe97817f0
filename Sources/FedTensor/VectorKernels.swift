/// Small elementwise kernels on raw pointers, written with explicit 8-wide SIMD so they stay
/// vectorized (the compiler cannot prove the pointers do not alias, and turns short copy loops
/// into `memmove` calls whose overhead dominates at the widths convolutions use).
public enum VectorKernels {
    public typealias V = SIMD8<Float>

    @inlinable @inline(__always)
    static func load(_ p: UnsafePointer<Float>) -> V {
        UnsafeRawPointer(p).loadUnaligned(as: V.self)
    }

    @inlinable @inline(__always)
    static func store(_ v: V, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: V.self)
    }

    /// `dst[0..<n] = src[0..<n]` for short rows (non-overlapping).
    @inlinable @inline(__always)
    public static func copy(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ n: Int) {
        if n >= 8 {
            var i = 0
            while i + 8 <= n {
                store(load(src + i), dst + i)
                i += 8
            }
            // Overlapping tail: rewrites a few elements with the same values.
            if i < n { store(load(src + n - 8), dst + n - 8) }
        } else {
            for i in 0..<n { dst[i] = src[i] }
        }
    }

    /// `dst[0..<n] += src[0..<n]` (non-overlapping).
    @inlinable @inline(__always)
    public static func add(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ n: Int) {
        var i = 0
        while i + 8 <= n {
            store(load(dst + i) + load(src + i), dst + i)
            i += 8
        }
        while i < n {
            dst[i] += src[i]
            i += 1
        }
    }

    /// `y = max(x, 0)`, NaN propagated as in PyTorch.
    @inlinable
    public static func relu(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        var i = 0
        let zero = V(repeating: 0)
        while i + 8 <= n {
            let v = load(x + i)
            // v < 0 is false for NaN, so NaN passes through.
            store(v.replacing(with: zero, where: v .< zero), y + i)
            i += 8
        }
        while i < n {
            let v = x[i]
            y[i] = v < 0 ? 0 : v
            i += 1
        }
    }

    /// `dx = out > 0 ? g : 0`.
    @inlinable
    public static func reluBackward(
        output: UnsafePointer<Float>, gradient: UnsafePointer<Float>, result: UnsafeMutablePointer<Float>, _ n: Int
    ) {
        var i = 0
        let zero = V(repeating: 0)
        while i + 8 <= n {
            let o = load(output + i)
            store(zero.replacing(with: load(gradient + i), where: o .> zero), result + i)
            i += 8
        }
        while i < n {
            result[i] = output[i] > 0 ? gradient[i] : 0
            i += 1
        }
    }

    /// Whether no element is NaN or ±Inf: `x − x` is 0 exactly for finite `x`.
    public static func allFinite(_ v: UnsafeBufferPointer<Float>) -> Bool {
        var acc = V(repeating: 0)
        var i = 0
        while i + 8 <= v.count {
            let x = UnsafeRawPointer(v.baseAddress! + i).loadUnaligned(as: V.self)
            acc += x - x
            i += 8
        }
        var tail: Float = 0
        while i < v.count {
            tail += v[i] - v[i]
            i += 1
        }
        return acc.sum() == 0 && tail == 0 && (acc - acc) == .zero
    }
}
