/// Chooses the Top-K keep ratio of every selected client for one round.
///
/// ```swift
/// let ratios = try BCRS(baseRatio: 0.01).ratios(round: 3, links: links, elements: model.count)
/// ```
public protocol RatioPolicy: Sendable {
    /// The keep ratio (in `(0, 1]`) of each client, in the order of `links`.
    /// - Parameters:
    ///   - round: 1-based round number `t`.
    ///   - links: the selected clients' uplinks.
    ///   - elements: number of elements `S` of the dense update.
    /// - Throws: `CodecError.invalidParameter` for a round < 1, a negative element count or an invalid link.
    func ratios(round: Int, links: [ClientLink], elements: Int) throws -> [Double]
}

extension RatioPolicy {
    /// Checks the arguments every policy shares.
    func validate(round: Int, links: [ClientLink], elements: Int) throws {
        guard round >= 1 else { throw CodecError(.invalidParameter, "rounds are 1-based, got \(round)") }
        guard elements >= 0 else { throw CodecError(.invalidParameter, "element count must be ≥ 0, got \(elements)") }
        for link in links { try link.validate() }
    }
}

/// Throws `invalidParameter` unless `0 < rMin ≤ rMax ≤ 1`.
func validateRatioClamp(_ rMin: Double, _ rMax: Double) throws {
    guard rMin > 0, rMin <= rMax, rMax <= 1 else {
        throw CodecError(.invalidParameter, "ratio clamp must satisfy 0 < rMin ≤ rMax ≤ 1, got [\(rMin), \(rMax)]")
    }
}
