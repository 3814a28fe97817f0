/// Weighted sums of client vectors in `Double`, in update order, a tile of elements at a time.
///
/// Each element's sum is formed exactly as a whole-vector pass would form it (update 0's term,
/// then update 1's added, and so on), so the result does not depend on the tile size; but only one
/// tile of sums (``tileElements`` doubles per summed vector) exists at once, so aggregating a large
/// model costs no buffer of its size. Inputs are checked finite before the first tile is handed
/// out, so a strategy never applies part of an aggregation that then fails.
final class DeltaAccumulator {
    /// Elements per tile: 16,384 doubles (128 KiB) a summed vector, within a core's L2 cache.
    static let tileElements = 16_384

    private var storage: UnsafeMutableBufferPointer<Double> = .init(start: nil, count: 0)

    init() {}

    deinit { storage.deallocate() }

    /// Doubles the scratch holds (one tile per summed vector of the largest call so far).
    var capacity: Int { storage.count }

    /// One weighted sum: Σ_k weights[k] · updates[k][keyPath: vector].
    struct Term {
        var vector: KeyPath<ClientUpdate, [Float]>
        var weights: [Double]
        /// What the vector is, for error messages ("delta", "control delta").
        var what: String
    }

    /// Validates `updates` for a model of `count` parameters, then hands `apply` the sample-weighted
    /// mean delta Σ pᵢ Δᵢ with pᵢ = nᵢ / Σ nⱼ (the FedAvg average), tile by tile.
    func sampleWeightedMeanDelta(
        _ updates: [ClientUpdate], count: Int, apply: (_ range: Range<Int>, _ mean: UnsafeBufferPointer<Double>) -> Void
    ) throws {
        try ClientUpdate.validate(updates, parameterCount: count)
        let term = Term(vector: \.delta, weights: ClientUpdate.sampleWeights(updates), what: "delta")
        try weightedSums(updates, [term], count: count) { range, sums in apply(range, sums[0]) }
    }

    /// Calls `apply` for consecutive ranges covering `0..<count`, each with the terms' sums over that
    /// range (`sums[t][j]` is term t's sum at element `range.lowerBound + j`), valid during the call.
    /// - Throws: ``StrategyError/Code/nonFiniteValue`` naming the first client whose vector holds NaN
    ///   or an infinity, before `apply` is first called.
    func weightedSums(
        _ updates: [ClientUpdate], _ terms: [Term], count: Int,
        apply: (_ range: Range<Int>, _ sums: [UnsafeBufferPointer<Double>]) -> Void
    ) throws {
        for term in terms {
            precondition(term.weights.count == updates.count, "one weight per update")
            // Weights are finite and Float inputs cannot overflow a Double sum, so the sums are
            // finite exactly when every input is.
            for update in updates where !Self.allFinite(update[keyPath: term.vector]) {
                throw ClientUpdate.nonFiniteError(updates, term.vector, what: term.what)
            }
        }
        guard count > 0 else { return }
        let tile = Self.tileElements
        if storage.count < tile * terms.count {
            storage.deallocate()
            storage = .allocate(capacity: tile * terms.count)
        }
        let base = storage.baseAddress!
        // The vectors' base addresses, held for the whole call: the updates (and so their arrays)
        // outlive it.
        var sources: [[UnsafePointer<Float>]] = []
        for term in terms {
            sources.append(updates.map { $0[keyPath: term.vector].withUnsafeBufferPointer { $0.baseAddress! } })
        }
        var start = 0
        while start < count {
            let n = min(tile, count - start)
            var sums: [UnsafeBufferPointer<Double>] = []
            for t in terms.indices {
                let sum = base + t * tile
                for (k, w) in terms[t].weights.enumerated() {
                    let d = sources[t][k] + start
                    if k == 0 {
                        for j in 0..<n { sum[j] = w * Double(d[j]) }
                    } else {
                        for j in 0..<n { sum[j] += w * Double(d[j]) }
                    }
                }
                sums.append(UnsafeBufferPointer(start: sum, count: n))
            }
            apply(start..<(start + n), sums)
            start += n
        }
    }

    /// True if no element is NaN or infinite: x − x is 0 for finite x and NaN otherwise.
    static func allFinite(_ values: [Float]) -> Bool {
        values.withUnsafeBytes { raw in
            let count = raw.count / MemoryLayout<Float>.stride
            var probe = SIMD8<Float>.zero
            var j = 0
            while j + 8 <= count {
                let v = raw.loadUnaligned(fromByteOffset: j * MemoryLayout<Float>.stride, as: SIMD8<Float>.self)
                probe += v - v
                j += 8
            }
            var tail: Float = 0
            while j < count {
                let v = raw.load(fromByteOffset: j * MemoryLayout<Float>.stride, as: Float.self)
                tail += v - v
                j += 1
            }
            return probe.sum() + tail == 0
        }
    }
}

/// How large a buffer the server keeps between rounds for reuse (update slots): up to 32 MiB each.
/// Larger ones are allocated per round and released after it: a fresh buffer's page faults cost
/// little next to the round that fills it, and holding it would add a large model's size to the
/// server's footprint between rounds.
public enum ScratchPolicy {
    public static let keptBytes = 32 << 20
}
