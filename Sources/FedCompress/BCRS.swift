/// Bandwidth-aware compression ratio scheduling (BCRS; "Bandwidth-Aware and Overlap-Weighted Compression
/// for Communication-Efficient Federated Learning", ICPP 2024): faster links keep more, so every
/// selected client finishes its upload at about the time the slowest one needs at the base ratio.
///
/// With `S` elements in the dense update, `c` bits per kept element (value plus index), client `i`'s
/// bandwidth `Bᵢ` (bit/s) and latency `Lᵢ` (s), the upload time at ratio `r` is `Lᵢ + r·S·c / Bᵢ`.
/// - Deadline: `T = maxᵢ (Lᵢ + r₀·S·c / Bᵢ)`, the slowest client's time at the base ratio `r₀`.
/// - Ratio: `rᵢ = clamp((T − Lᵢ)·Bᵢ / (S·c), r_min, r_max)`; the client attaining `T` gets `clamp(r₀)`
///   exactly. Unclamped clients finish at `T`; clamped ones earlier (`r_max`) or later (`r_min`).
/// With `S = 0` (or no clients) every ratio is `clamp(r₀)`.
public struct BCRS: RatioPolicy {
    public let baseRatio: Double
    public let minimumRatio: Double
    public let maximumRatio: Double
    public let bitsPerKeptElement: Double

    /// - Parameters:
    ///   - baseRatio: `r₀`, in `[minimumRatio, maximumRatio]`.
    ///   - minimumRatio: `r_min > 0`.
    ///   - maximumRatio: `r_max ≤ 1`.
    ///   - bitsPerKeptElement: `c > 0`; 64 for an fp32 value with a 32-bit index.
    public init(
        baseRatio: Double, minimumRatio: Double = 1e-4, maximumRatio: Double = 1, bitsPerKeptElement: Double = 64
    ) {
        self.baseRatio = baseRatio
        self.minimumRatio = minimumRatio
        self.maximumRatio = maximumRatio
        self.bitsPerKeptElement = bitsPerKeptElement
    }

    /// `T = maxᵢ (Lᵢ + r₀·S·c / Bᵢ)` (0 with no clients).
    public func deadline(links: [ClientLink], elements: Int) -> Double {
        let bits = baseRatio * Double(elements) * bitsPerKeptElement
        return links.map { $0.latency + bits / $0.bandwidth }.max() ?? 0
    }

    /// Upload time `Lᵢ + r·S·c / Bᵢ` of `link` at ratio `r`.
    public func uploadTime(_ link: ClientLink, ratio r: Double, elements: Int) -> Double {
        link.latency + r * Double(elements) * bitsPerKeptElement / link.bandwidth
    }

    public func ratios(round: Int, links: [ClientLink], elements: Int) throws -> [Double] {
        try validate(round: round, links: links, elements: elements)
        try validateRatioClamp(minimumRatio, maximumRatio)
        guard baseRatio >= minimumRatio, baseRatio <= maximumRatio else {
            throw CodecError(.invalidParameter, "base ratio \(baseRatio) is outside [\(minimumRatio), \(maximumRatio)]")
        }
        guard bitsPerKeptElement.isFinite, bitsPerKeptElement > 0 else {
            throw CodecError(
                .invalidParameter, "bits per kept element must be finite and > 0, got \(bitsPerKeptElement)")
        }
        let denseBits = Double(elements) * bitsPerKeptElement
        guard denseBits > 0, !links.isEmpty else { return Array(repeating: baseRatio, count: links.count) }
        let times = links.map { uploadTime($0, ratio: baseRatio, elements: elements) }
        let slowest = times.indices.max { times[$0] < times[$1] }!
        let t = times[slowest]
        return links.indices.map { i in
            if i == slowest { return baseRatio }
            let r = (t - links[i].latency) * links[i].bandwidth / denseBits
            return min(maximumRatio, max(minimumRatio, r))
        }
    }
}
