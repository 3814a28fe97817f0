import FedTensor

/// Top-K sparsification: keeps the k largest magnitudes, ties broken by lower index.
///
/// Exact mode selects in O(n) expected time (sample pre-filter, then introselect on the
/// survivors; no full sort) and keeps exactly the first k of the order |x| descending, index
/// ascending. Approximate mode follows Deep Gradient Compression (Lin et al., 2018): a threshold
/// estimated from a ~1 % seeded sample, corrected until between k and ⌊1.25k⌋ elements exceed
/// it (else exact); every kept magnitude is still ≥ every dropped one.
///
/// ```swift
/// let codec = TopKCodec(ratio: 0.01)
/// let bytes = try codec.encode(gradient)
/// ```
/// Payload: see `SparsePayload` (header, value format, k, index block, values).
public struct TopKCodec: Codec {
    /// How many elements to keep.
    public enum Budget: Sendable, Equatable {
        /// `round(ratio · n)` clamped to `1…n`; `0 < ratio ≤ 1`.
        case ratio(Double)
        /// `min(k, n)`; `k ≥ 0`.
        case count(Int)
    }

    public let budget: Budget
    public let approximate: Bool
    public let valueFormat: SparseValueFormat

    /// Keeps a fraction `ratio` (in `(0, 1]`) of the elements.
    public init(ratio: Double, approximate: Bool = false, valueFormat: SparseValueFormat = .fp32) {
        self.init(budget: .ratio(ratio), approximate: approximate, valueFormat: valueFormat)
    }

    /// Keeps `k` elements (all of them when the vector is shorter).
    public init(k: Int, approximate: Bool = false, valueFormat: SparseValueFormat = .fp32) {
        self.init(budget: .count(k), approximate: approximate, valueFormat: valueFormat)
    }

    public init(budget: Budget, approximate: Bool = false, valueFormat: SparseValueFormat = .fp32) {
        self.budget = budget
        self.approximate = approximate
        self.valueFormat = valueFormat
    }

    public var id: CodecID { .topK }

    public var name: String {
        var s: String
        switch budget {
        case .ratio(let r): s = "topk(ratio=\(r)"
        case .count(let k): s = "topk(k=\(k)"
        }
        if approximate { s += ",approximate" }
        if valueFormat == .fp16 { s += ",fp16" }
        return s + ")"
    }

    /// Throws `invalidParameter` unless the budget is usable.
    public func validate() throws {
        switch budget {
        case .ratio(let r):
            guard r > 0 && r <= 1 else {
                throw CodecError(.invalidParameter, "topk ratio must be in (0, 1], got \(r)")
            }
        case .count(let k):
            guard k >= 0 else { throw CodecError(.invalidParameter, "topk k must be ≥ 0, got \(k)") }
        }
    }

    /// Number of elements kept out of `n` (exact mode; approximate keeps up to 25 % more).
    public func keptCount(of n: Int) -> Int {
        switch budget {
        case .ratio(let r): SparsePayload.keptCount(ratio: r, of: n)
        case .count(let k): min(k, n)
        }
    }

    public func encode(_ values: UnsafeBufferPointer<Float>, context: CodecContext) throws -> [UInt8] {
        try validate()
        let k = keptCount(of: values.count)
        var rng = SeededRNG(seed: context.seed, stream: context.stream + "/topk")
        let indices =
            approximate
            ? TopKSelection.approximate(values, k: k, rng: &rng)
            : TopKSelection.exact(values, k: k, rng: &rng)
        return try SparsePayload.encode(
            codec: id, source: values, indices: indices, format: valueFormat)
    }

    public func decode(_ payload: [UInt8]) throws -> DecodedUpdate {
        try SparsePayload.decode(payload, codec: id)
    }
}
