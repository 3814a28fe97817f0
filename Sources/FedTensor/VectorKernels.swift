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

    /// `y[0..<n] = a[0..<n] + b[0..<n]` (`y` may be neither `a` nor `b`).
    @inlinable
    public static func add(
        _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, _ n: Int
    ) {
        var i = 0
        while i + 8 <= n {
            store(load(a + i) + load(b + i), y + i)
            i += 8
        }
        while i < n {
            y[i] = a[i] + b[i]
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

    /// Elements a reduction adds in float lanes before it carries their total into a Double.
    @usableFromInline static let reductionChunk = 256

    /// `Σ term(x[i])` over `0..<n`: 16 float lanes over chunks of `reductionChunk`, the chunks'
    /// totals added in Double (as accurate as a Double running sum for the lengths normalisation
    /// layers see, and not bound by the latency of one chain of additions). `lanes` and `scalar`
    /// are the same term, on 8 lanes and on one element.
    @inlinable @inline(__always)
    static func chunkedSum(
        _ x: UnsafePointer<Float>, _ n: Int, lanes: (V) -> V, scalar: (Float) -> Float
    ) -> Double {
        var total: Double = 0
        var start = 0
        while start < n {
            let end = min(n, start + reductionChunk)
            var (a, b) = (V(repeating: 0), V(repeating: 0))
            var i = start
            while i + 16 <= end {
                a += lanes(load(x + i))
                b += lanes(load(x + i + 8))
                i += 16
            }
            var tail: Float = 0
            while i < end {
                tail += scalar(x[i])
                i += 1
            }
            total += Double((a + b).sum()) + Double(tail)
            start = end
        }
        return total
    }

    /// `Σ x[0..<n]`, accumulated as `chunkedSum`.
    @inlinable
    public static func sum(_ x: UnsafePointer<Float>, _ n: Int) -> Double {
        chunkedSum(x, n, lanes: { $0 }, scalar: { $0 })
    }

    /// `Σ (x[i] − c)²` over `0..<n`, accumulated as `chunkedSum`.
    @inlinable
    public static func sumOfSquaredDeviations(_ x: UnsafePointer<Float>, _ n: Int, from c: Float) -> Double {
        let cv = V(repeating: c)
        return chunkedSum(
            x, n,
            lanes: { v in
                let d = v - cv
                return d * d
            },
            scalar: { v in
                let d = v - c
                return d * d
            })
    }

    /// `(Σ a[i], Σ a[i]·b[i])` over `0..<n`, accumulated as `chunkedSum`.
    @inlinable
    public static func sumAndDot(
        _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int
    ) -> (
        sum: Double, dot: Double
    ) {
        var (sum, dot): (Double, Double) = (0, 0)
        var start = 0
        while start < n {
            let end = min(n, start + reductionChunk)
            var (s, d) = (V(repeating: 0), V(repeating: 0))
            var i = start
            while i + 8 <= end {
                let va = load(a + i)
                s += va
                d += va * load(b + i)
                i += 8
            }
            var (ts, td): (Float, Float) = (0, 0)
            while i < end {
                ts += a[i]
                td += a[i] * b[i]
                i += 1
            }
            sum += Double(s.sum()) + Double(ts)
            dot += Double(d.sum()) + Double(td)
            start = end
        }
        return (sum, dot)
    }

    /// `v = (x − mean)·invStd` into `normalized` (when given) and `v·scale + shift` into `output`.
    @inlinable
    public static func normalize(
        _ x: UnsafePointer<Float>, normalized: UnsafeMutablePointer<Float>?, output: UnsafeMutablePointer<Float>,
        _ n: Int, mean: Float, invStd: Float, scale: Float, shift: Float
    ) {
        let (m, s, g, t) = (V(repeating: mean), V(repeating: invStd), V(repeating: scale), V(repeating: shift))
        var i = 0
        if let normalized {
            while i + 8 <= n {
                let v = (load(x + i) - m) * s
                store(v, normalized + i)
                store(v * g + t, output + i)
                i += 8
            }
        } else {
            while i + 8 <= n {
                store((load(x + i) - m) * s * g + t, output + i)
                i += 8
            }
        }
        while i < n {
            let v = (x[i] - mean) * invStd
            normalized?[i] = v
            output[i] = v * scale + shift
            i += 1
        }
    }

    /// The input gradient of a normalisation: `dx = invStd·(dy·scale − a − normalized·b)`.
    @inlinable
    public static func normalizeBackward(
        gradient dy: UnsafePointer<Float>, normalized: UnsafePointer<Float>, result dx: UnsafeMutablePointer<Float>,
        _ n: Int, invStd: Float, scale: Float, a: Float, b: Float
    ) {
        let (s, g, av, bv) = (V(repeating: invStd), V(repeating: scale), V(repeating: a), V(repeating: b))
        var i = 0
        while i + 8 <= n {
            store(s * (load(dy + i) * g - av - load(normalized + i) * bv), dx + i)
            i += 8
        }
        while i < n {
            dx[i] = invStd * (dy[i] * scale - a - normalized[i] * b)
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
