/// Weighted sums of client vectors in `Double`, in update order, into one reusable scratch buffer.
///
/// Each vector is read exactly once; the scratch buffer is kept between rounds (``trim()``) so
/// aggregation allocates nothing once the model size is known, unless it is large.
final class DeltaAccumulator {
    private var storage: UnsafeMutableBufferPointer<Double> = .init(start: nil, count: 0)

    init() {}

    deinit { storage.deallocate() }

    /// Elements the scratch buffer holds now (0 once released).
    var capacity: Int { storage.count }

    /// Releases the scratch buffer if it is larger than ``ScratchPolicy/keptBytes``; strategies
    /// call it when a round's aggregation is done.
    func trim() {
        guard storage.count * MemoryLayout<Double>.stride > ScratchPolicy.keptBytes else { return }
        storage.deallocate()
        storage = .init(start: nil, count: 0)
    }

    /// Sets the scratch to Σ_k weights[k] · updates[k][keyPath: vector] over the first `count` elements
    /// and returns it (valid until the next call).
    /// Validates `updates` for a model of `count` parameters, then returns the sample-weighted
    /// mean delta Σ pᵢ Δᵢ with pᵢ = nᵢ / Σ nⱼ (the FedAvg average).
    func sampleWeightedMeanDelta(_ updates: [ClientUpdate], count: Int) throws -> UnsafeBufferPointer<Double> {
        try ClientUpdate.validate(updates, parameterCount: count)
        return try weightedSum(
            updates, \.delta, weights: ClientUpdate.sampleWeights(updates), count: count, what: "delta")
    }

    /// - Throws: ``StrategyError/Code/nonFiniteValue`` naming the first client whose vector holds NaN or an infinity.
    func weightedSum(
        _ updates: [ClientUpdate], _ vector: KeyPath<ClientUpdate, [Float]>, weights: [Double], count: Int,
        what: String
    ) throws -> UnsafeBufferPointer<Double> {
        precondition(weights.count == updates.count, "one weight per update")
        if storage.count < count {
            storage.deallocate()
            storage = .allocate(capacity: count)
        }
        guard count > 0 else { return UnsafeBufferPointer(start: storage.baseAddress, count: 0) }
        let sum = storage.baseAddress!
        for (k, update) in updates.enumerated() {
            let w = weights[k]
            update[keyPath: vector].withUnsafeBufferPointer { source in
                let d = source.baseAddress!
                if k == 0 {
                    for j in 0..<count { sum[j] = w * Double(d[j]) }
                } else {
                    for j in 0..<count { sum[j] += w * Double(d[j]) }
                }
            }
        }
        // Weights are positive and finite and Float inputs cannot overflow a Double sum, so the sum is
        // finite exactly when every input is; only then is it worth finding the culprit.
        guard Self.allFinite(sum, count: count) else {
            throw ClientUpdate.nonFiniteError(updates, vector, what: what)
        }
        return UnsafeBufferPointer(start: sum, count: count)
    }

    /// True if no element is NaN or infinite: x − x is 0 for finite x and NaN otherwise.
    private static func allFinite(_ values: UnsafeMutablePointer<Double>, count: Int) -> Bool {
        var probe = SIMD4<Double>.zero
        let raw = UnsafeRawPointer(values)
        var j = 0
        while j + 4 <= count {
            let v = raw.loadUnaligned(fromByteOffset: j * MemoryLayout<Double>.stride, as: SIMD4<Double>.self)
            probe += v - v
            j += 4
        }
        var tail = 0.0
        while j < count {
            tail += values[j] - values[j]
            j += 1
        }
        return probe.sum() + tail == 0
    }
}

/// How large a buffer the server keeps between rounds for reuse (aggregation scratch, update
/// slots): up to 32 MiB each. Larger ones are allocated per round and released after it: a fresh
/// buffer's page faults cost little next to the round that fills it, and holding it would add a
/// large model's size (or twice it) to the server's footprint between rounds.
public enum ScratchPolicy {
    public static let keptBytes = 32 << 20
}
