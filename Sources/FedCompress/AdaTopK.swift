/// Adaptive Top-K after FusionLLM: only links too slow for the target round time are compressed.
///
/// Client `i`'s dense upload time is `tᵢ = Lᵢ + S·b / Bᵢ` (`S` elements of `b` bits, bandwidth `Bᵢ`
/// bit/s, latency `Lᵢ` s). With target time `τ`:
/// `rᵢ = r_max` if `tᵢ ≤ τ`, else `rᵢ = clamp(τ / tᵢ, r_min, r_max)`.
public struct AdaTopK: RatioPolicy {
    public let targetTime: Double
    public let minimumRatio: Double
    public let maximumRatio: Double
    public let bitsPerElement: Double

    /// - Parameters:
    ///   - targetTime: `τ > 0`, seconds.
    ///   - minimumRatio: `r_min > 0`.
    ///   - maximumRatio: `r_max ≤ 1`, used for links that meet `τ` uncompressed.
    ///   - bitsPerElement: `b > 0` of the dense update (32 for fp32).
    public init(targetTime: Double, minimumRatio: Double = 1e-4, maximumRatio: Double = 1, bitsPerElement: Double = 32)
    {
        self.targetTime = targetTime
        self.minimumRatio = minimumRatio
        self.maximumRatio = maximumRatio
        self.bitsPerElement = bitsPerElement
    }

    /// `r_max` if `t ≤ τ`, else `clamp(τ / t, r_min, r_max)`, for a measured dense upload time `t ≥ 0`.
    public func ratio(denseUploadTime t: Double) throws -> Double {
        try validateRatioClamp(minimumRatio, maximumRatio)
        guard targetTime.isFinite, targetTime > 0 else {
            throw CodecError(.invalidParameter, "target time must be finite and > 0 s, got \(targetTime)")
        }
        guard t >= 0, !t.isNaN else { throw CodecError(.invalidParameter, "upload time must be ≥ 0 s, got \(t)") }
        if t <= targetTime { return maximumRatio }
        return min(maximumRatio, max(minimumRatio, targetTime / t))
    }

    public func ratios(round: Int, links: [ClientLink], elements: Int) throws -> [Double] {
        try validate(round: round, links: links, elements: elements)
        guard bitsPerElement.isFinite, bitsPerElement > 0 else {
            throw CodecError(.invalidParameter, "bits per element must be finite and > 0, got \(bitsPerElement)")
        }
        let bits = Double(elements) * bitsPerElement
        return try links.map { try ratio(denseUploadTime: $0.latency + bits / $0.bandwidth) }
    }
}
