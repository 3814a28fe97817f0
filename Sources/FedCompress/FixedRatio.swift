/// The same ratio for every client and round: `rᵢ(t) = r`.
public struct FixedRatio: RatioPolicy {
    public let ratio: Double

    /// - Parameter ratio: keep ratio `r` in `(0, 1]`.
    public init(_ ratio: Double) {
        self.ratio = ratio
    }

    public func ratios(round: Int, links: [ClientLink], elements: Int) throws -> [Double] {
        try validate(round: round, links: links, elements: elements)
        guard ratio > 0, ratio <= 1 else {
            throw CodecError(.invalidParameter, "ratio must be in (0, 1], got \(ratio)")
        }
        return Array(repeating: ratio, count: links.count)
    }
}
