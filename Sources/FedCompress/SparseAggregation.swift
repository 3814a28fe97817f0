/// Weighted averaging of decoded client updates without densifying sparse ones: each update is
/// added in one pass to running sums in `Double` arrays of length n.
///
/// Weights are typically client sample counts. Two rules:
/// - `weightedAverage`: out_j = Σ_i w_i x_ij / Σ_i w_i, where a coordinate missing from a sparse
///   update counts as x_ij = 0.
/// - `overlapWeightedAverage` (OPWA; "Bandwidth-Aware and Overlap-Weighted Compression for
///   Communication-Efficient Federated Learning", ICPP 2024): each coordinate is averaged only over
///   the clients S_j whose payload contains it, with the weights renormalised per coordinate:
///   out_j = Σ_{i ∈ S_j} w_i x_ij / Σ_{i ∈ S_j} w_i, and out_j = 0 where S_j is empty. A dense
///   update contains every coordinate.
///
/// ```swift
/// let mean = try SparseAggregation.overlapWeightedAverage([(a, 120), (b, 80)], count: n)
/// ```
public enum SparseAggregation {
    /// out_j = Σ_i w_i x_ij / Σ_i w_i (missing sparse coordinates are 0).
    /// - Throws: `CodecError` (see `accumulate`); `invalidParameter` for no updates.
    public static func weightedAverage(
        _ updates: [(update: DecodedUpdate, weight: Double)], count n: Int
    ) throws -> [Float] {
        let (sums, _, totalWeight) = try accumulate(updates, count: n, perCoordinateWeights: false)
        return sums.map { Float($0 / totalWeight) }
    }

    /// OPWA: out_j = Σ_{i: j ∈ S_i} w_i x_ij / Σ_{i: j ∈ S_i} w_i, and 0 where no client sent j.
    /// - Throws: `CodecError` (see `accumulate`); `invalidParameter` for no updates.
    public static func overlapWeightedAverage(
        _ updates: [(update: DecodedUpdate, weight: Double)], count n: Int
    ) throws -> [Float] {
        let (sums, weightSums, denseWeight) = try accumulate(updates, count: n, perCoordinateWeights: true)
        var out = [Float](repeating: 0, count: n)
        out.withUnsafeMutableBufferPointer { o in
            sums.withUnsafeBufferPointer { s in
                weightSums.withUnsafeBufferPointer { w in
                    for j in 0..<n {
                        let weight = w[j] + denseWeight
                        if weight > 0 { o[j] = Float(s[j] / weight) }
                    }
                }
            }
        }
        return out
    }

    /// OPWA as a per-coordinate rescaling, for a server that averages densified updates with the
    /// plain weights (as the FedAvg family does): scale_j = W / W_j with W = Σ_i w_i and
    /// W_j = Σ_{i: j ∈ S_i} w_i (a `nil` entry of `kept` is a dense update, containing every j);
    /// scale_j = 0 where W_j = 0. Multiplying each update's coordinate j by scale_j turns the plain
    /// weighted mean Σ_i w_i x_ij / W into the OPWA mean Σ_{i ∈ S_j} w_i x_ij / W_j.
    /// - Throws: `invalidParameter` for no updates, a length mismatch between `kept` and `weights`, or
    ///   a weight that is not finite and positive; `indexOutOfRange` for an index ≥ n.
    public static func overlapScales(kept: [[UInt32]?], weights: [Double], count n: Int) throws -> [Float] {
        guard !kept.isEmpty, kept.count == weights.count else {
            throw CodecError(.invalidParameter, "need one weight per update and at least one update")
        }
        var coverage = [Double](repeating: 0, count: n)
        var dense = 0.0
        var total = 0.0
        for (indices, w) in zip(kept, weights) {
            guard w.isFinite, w > 0 else {
                throw CodecError(.invalidParameter, "weight must be finite and > 0, got \(w)")
            }
            total += w
            guard let indices else {
                dense += w
                continue
            }
            try coverage.withUnsafeMutableBufferPointer { c in
                for i in indices {
                    guard Int(i) < n else { throw CodecError(.indexOutOfRange, "index \(i) out of range 0..<\(n)") }
                    c[Int(i)] += w
                }
            }
        }
        return coverage.map { c in
            let weight = c + dense
            return weight > 0 ? Float(total / weight) : 0
        }
    }

    /// Σ_i w_i x_ij per coordinate, and (if `perCoordinateWeights`) Σ w_i over the sparse updates
    /// containing j; the third result is Σ w_i over all updates, or over the dense ones only when
    /// `perCoordinateWeights` (dense weight applies to every coordinate, so it is kept as one number).
    /// - Throws: `invalidParameter` for no updates, a negative `n`, or a weight that is not finite and
    ///   positive; `countMismatch` for an update of another length (or sparse indices and values of
    ///   different lengths); `indexOutOfRange` for a sparse index ≥ n or indices not strictly
    ///   increasing; `nonFinite` for a NaN or infinite value.
    private static func accumulate(
        _ updates: [(update: DecodedUpdate, weight: Double)], count n: Int, perCoordinateWeights: Bool
    ) throws -> (sums: [Double], weightSums: [Double], weight: Double) {
        guard n >= 0 else { throw CodecError(.invalidParameter, "aggregation length must be ≥ 0, got \(n)") }
        guard !updates.isEmpty else { throw CodecError(.invalidParameter, "no updates to aggregate") }
        var sums = [Double](repeating: 0, count: n)
        var weightSums = [Double](repeating: 0, count: perCoordinateWeights ? n : 0)
        var weight = 0.0
        try sums.withUnsafeMutableBufferPointer { s in
            try weightSums.withUnsafeMutableBufferPointer { ws in
                for (number, (update, w)) in updates.enumerated() {
                    guard w.isFinite, w > 0 else {
                        throw CodecError(.invalidParameter, "update \(number): weight must be finite and > 0, got \(w)")
                    }
                    guard update.count == n else {
                        throw CodecError(.countMismatch, "update \(number) has \(update.count) elements, expected \(n)")
                    }
                    switch update {
                    case .dense(let values):
                        try values.withUnsafeBufferPointer { x in
                            for j in 0..<n {
                                guard x[j].isFinite else {
                                    throw CodecError(.nonFinite, "update \(number): element \(j) is \(x[j])")
                                }
                                s[j] += w * Double(x[j])
                            }
                        }
                        weight += w
                    case .sparse(_, let indices, let values):
                        guard indices.count == values.count else {
                            throw CodecError(
                                .countMismatch,
                                "update \(number): \(indices.count) indices but \(values.count) values")
                        }
                        try indices.withUnsafeBufferPointer { idx in
                            try values.withUnsafeBufferPointer { x in
                                var previous = -1
                                for i in 0..<idx.count {
                                    let j = Int(idx[i])
                                    guard j > previous, j < n else {
                                        throw CodecError(
                                            .indexOutOfRange,
                                            "update \(number): index \(j) out of range 0..<\(n) or not increasing")
                                    }
                                    guard x[i].isFinite else {
                                        throw CodecError(.nonFinite, "update \(number): value at \(j) is \(x[i])")
                                    }
                                    previous = j
                                    s[j] += w * Double(x[i])
                                    if perCoordinateWeights { ws[j] += w }
                                }
                            }
                        }
                        if !perCoordinateWeights { weight += w }
                    }
                }
            }
        }
        return (sums, weightSums, weight)
    }
}
