/// How far `actual` is from `expected`, in the scale the numeric tests use: the largest absolute
/// difference, against `max(1, max |expected|)` (relative for large values, absolute near zero).
///
/// ```swift
/// let c = Closeness(actual, expected)
/// #expect(c.isWithin(1e-5), "output: \(c)")
/// ```
public struct Closeness: CustomStringConvertible, Sendable {
    /// Largest `|actual - expected|`; NaN when a difference is NaN, infinity when the counts differ.
    public let worst: Float
    /// `max(1, max |expected|)`.
    public let scale: Float

    public init(_ actual: [Float], _ expected: [Float]) {
        scale = max(1, expected.map(abs).max() ?? 1)
        guard actual.count == expected.count else {
            worst = .infinity
            return
        }
        var largest: Float = 0
        for (a, e) in zip(actual, expected) {
            let d = abs(a - e)
            // `max` would skip a NaN; a NaN anywhere must fail every tolerance.
            if d.isNaN {
                largest = .nan
                break
            }
            largest = max(largest, d)
        }
        worst = largest
    }

    /// Whether `worst ≤ tolerance · scale` (a NaN difference never is).
    public func isWithin(_ tolerance: Float) -> Bool { worst <= tolerance * scale }

    public var description: String { "max |Δ| = \(worst), scale \(scale)" }
}
