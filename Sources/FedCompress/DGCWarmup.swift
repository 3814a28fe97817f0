#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Exponential sparsity warm-up of Deep Gradient Compression (Lin et al. 2018), the same for every client.
///
/// At 1-based round `t` the keep ratio is `r(t) = r^(min(t, W) / W)`: a geometric interpolation from
/// 1 (round 0) to the final ratio `r`, reached at round `W` and kept afterwards. With `r = 4⁻⁴ = 1/256`
/// and `W = 4` this gives 25 %, 6.25 %, 1.5625 %, 0.390625 %, then 0.390625 % — DGC's own schedule
/// (25 %, 6.25 %, 1.5625 %, 0.4 %, then 0.1 %) is this curve, floored at its final 0.1 %.
public struct DGCWarmup: RatioPolicy {
    public let finalRatio: Double
    public let warmupRounds: Int

    /// - Parameters:
    ///   - final: final keep ratio `r` in `(0, 1]`.
    ///   - warmupRounds: `W ≥ 1`; `W = 1` means no warm-up.
    public init(final: Double, warmupRounds: Int) {
        self.finalRatio = final
        self.warmupRounds = warmupRounds
    }

    /// `r^(min(t, W) / W)`.
    public func ratio(round t: Int) throws -> Double {
        guard finalRatio > 0, finalRatio <= 1 else {
            throw CodecError(.invalidParameter, "final ratio must be in (0, 1], got \(finalRatio)")
        }
        guard warmupRounds >= 1 else {
            throw CodecError(.invalidParameter, "warm-up rounds must be ≥ 1, got \(warmupRounds)")
        }
        guard t >= 1 else { throw CodecError(.invalidParameter, "rounds are 1-based, got \(t)") }
        if t >= warmupRounds { return finalRatio }
        return pow(finalRatio, Double(t) / Double(warmupRounds))
    }

    public func ratios(round: Int, links: [ClientLink], elements: Int) throws -> [Double] {
        try validate(round: round, links: links, elements: elements)
        return Array(repeating: try ratio(round: round), count: links.count)
    }
}
