/// Elementwise arithmetic and reductions. Binary operations require equal shapes (no
/// broadcasting); the engine's layers use raw kernels instead, these serve FL code and tests.
extension Tensor {
    /// A tensor of zeros.
    public static func zeros(_ shape: Shape) -> Tensor { Tensor(shape: shape, repeating: 0) }

    /// Samples from U(low, high) drawn from `rng`.
    public static func uniform(_ shape: Shape, low: Float = 0, high: Float = 1, rng: inout SeededRNG) -> Tensor {
        Tensor(shape: shape, scalars: (0..<shape.count).map { _ in rng.nextUniform(low, high) })
    }

    /// Samples from N(mean, std²) drawn from `rng`.
    public static func normal(_ shape: Shape, mean: Float = 0, std: Float = 1, rng: inout SeededRNG) -> Tensor {
        Tensor(shape: shape, scalars: (0..<shape.count).map { _ in mean + std * rng.nextNormal() })
    }

    @inlinable
    func zipped(_ other: Tensor, _ op: (Float, Float) -> Float) -> Tensor {
        precondition(shape == other.shape, "shapes \(shape) and \(other.shape) differ")
        var out = Tensor(uninitializedShape: shape)
        out.withUnsafeMutableBufferPointer { o in
            withUnsafeBufferPointer { a in
                other.withUnsafeBufferPointer { b in
                    for i in 0..<a.count { o[i] = op(a[i], b[i]) }
                }
            }
        }
        return out
    }

    @inlinable
    func mapped(_ op: (Float) -> Float) -> Tensor {
        var out = Tensor(uninitializedShape: shape)
        out.withUnsafeMutableBufferPointer { o in
            withUnsafeBufferPointer { a in for i in 0..<a.count { o[i] = op(a[i]) } }
        }
        return out
    }

    public static func + (lhs: Tensor, rhs: Tensor) -> Tensor { lhs.zipped(rhs, +) }
    public static func - (lhs: Tensor, rhs: Tensor) -> Tensor { lhs.zipped(rhs, -) }
    /// Elementwise (Hadamard) product.
    public static func * (lhs: Tensor, rhs: Tensor) -> Tensor { lhs.zipped(rhs, *) }
    public static func * (lhs: Float, rhs: Tensor) -> Tensor { rhs.mapped { lhs * $0 } }
    public static func * (lhs: Tensor, rhs: Float) -> Tensor { lhs.mapped { $0 * rhs } }
    public static prefix func - (x: Tensor) -> Tensor { x.mapped { -$0 } }

    /// `self += alpha · x`.
    public mutating func addScaled(_ x: Tensor, alpha: Float) {
        precondition(shape == x.shape, "shapes \(shape) and \(x.shape) differ")
        withUnsafeMutableBufferPointer { y in
            x.withUnsafeBufferPointer { xp in
                for i in 0..<y.count { y[i] += alpha * xp[i] }
            }
        }
    }

    /// Sum of all elements, accumulated in Double.
    public func sum() -> Float {
        withUnsafeBufferPointer { p in
            var s: Double = 0
            for v in p { s += Double(v) }
            return Float(s)
        }
    }

    /// Mean of all elements (NaN for an empty tensor).
    public func mean() -> Float { count == 0 ? .nan : sum() / Float(count) }

    /// Largest element (nil for an empty tensor; NaN if any element is NaN).
    public func max() -> Float? {
        withUnsafeBufferPointer { p in
            guard var best = p.first else { return nil }
            for v in p where v > best || v.isNaN {
                best = v
                if v.isNaN { break }
            }
            return best
        }
    }

    /// Smallest element (nil for an empty tensor; NaN if any element is NaN).
    public func min() -> Float? { (-self).max().map { -$0 } }

    /// Dot product of the flattened tensors, accumulated in Double.
    public func dot(_ other: Tensor) -> Float {
        precondition(count == other.count, "\(count) vs \(other.count) elements")
        return withUnsafeBufferPointer { a in
            other.withUnsafeBufferPointer { b in
                var s: Double = 0
                for i in 0..<a.count { s += Double(a[i]) * Double(b[i]) }
                return Float(s)
            }
        }
    }

    /// Euclidean norm of the flattened tensor.
    public func l2Norm() -> Float { Float(Double(dot(self)).squareRoot()) }

    /// Index of the largest element of each row of a `[rows, columns]` tensor (first on ties).
    public func argmaxRows() -> [Int] {
        precondition(shape.rank == 2, "argmaxRows needs a matrix, got \(shape)")
        let (rows, cols) = (shape[0], shape[1])
        return withUnsafeBufferPointer { p in
            (0..<rows).map { r in
                var best = 0
                for j in 1..<Swift.max(cols, 1) where p[r * cols + j] > p[r * cols + best] { best = j }
                return best
            }
        }
    }

    /// Whether every element is finite (no NaN or ±Inf).
    public var isFinite: Bool { withUnsafeBufferPointer { $0.allSatisfy(\.isFinite) } }

    /// Approximate equality: `|a − b| ≤ absoluteTolerance + relativeTolerance · |b|` elementwise.
    public func isApproximatelyEqual(
        to other: Tensor, relativeTolerance: Float = 1e-5, absoluteTolerance: Float = 1e-6
    ) -> Bool {
        guard shape == other.shape else { return false }
        return withUnsafeBufferPointer { a in
            other.withUnsafeBufferPointer { b in
                for i in 0..<a.count where !(abs(a[i] - b[i]) <= absoluteTolerance + relativeTolerance * abs(b[i])) {
                    return false
                }
                return true
            }
        }
    }
}
