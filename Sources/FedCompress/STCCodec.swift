import FedTensor

/// Sparse ternary compression (Sattler et al. 2019): the top-k elements by magnitude, each sent as
/// its sign times their common mean magnitude.
///
/// `k` is Top-K's count for the ratio, `min(n, max(1, round(ratio · n)))` (0 when n = 0); `K` = the
/// k indices of largest `|v_i|`, ties broken towards lower indices (Top-K's selection); `μ = (1/k) Σ_{i∈K} |v_i|`; `decoded_i = μ · sign(v_i)` for `i ∈ K`,
/// 0 elsewhere (returned sparse). Biased; pair with error feedback on the client.
///
/// Payload: header · varint k · float32 μ · k varint index gaps (the first index, then
/// `idx[j] − idx[j−1] − 1`) · ⌈k/8⌉ bytes of sign bits, LSB first, 1 = negative.
public struct STCCodec: Codec {
    public let ratio: Double

    /// - Parameter ratio: fraction of elements kept, in (0, 1].
    public init(ratio: Double) {
        precondition(ratio > 0 && ratio <= 1, "STC ratio must be in (0, 1]")
        self.ratio = ratio
    }

    public var id: CodecID { .stc }
    public var name: String { "stc(ratio=\(ratio))" }

    /// Number of elements kept out of `n`.
    public func keptCount(_ n: Int) -> Int { SparsePayload.keptCount(ratio: ratio, of: n) }

    public func encode(_ values: UnsafeBufferPointer<Float>, context: CodecContext) throws -> [UInt8] {
        let n = values.count
        let k = keptCount(n)
        var rng = SeededRNG(seed: context.seed, stream: context.stream + "/stc")
        let kept = TopKSelection.exact(values, k: k, rng: &rng)
        var sum: Double = 0
        for i in kept { sum += Double(values[Int(i)].magnitude) }
        let mu = k == 0 ? 0 : Float(sum / Double(k))
        guard mu.isFinite else { throw CodecError(.nonFinite, "the kept magnitudes are not finite") }
        var w = PayloadWriter(capacity: 24 + 3 * k)
        CodecHeader(codec: id, count: n).write(to: &w)
        w.writeVarint(UInt64(k))
        w.write(mu)
        var previous: Int64 = -1
        var bw = BitWriter(capacity: (k + 7) / 8)
        for index in kept {
            w.writeVarint(UInt64(Int64(index) - previous - 1))
            previous = Int64(index)
            bw.write(bit: values[Int(index)] < 0)
        }
        w.write(bytes: bw.finish())
        return w.bytes
    }

    public func decode(_ payload: [UInt8]) throws -> DecodedUpdate {
        var r = PayloadReader(payload)
        let header = try CodecHeader.read(from: &r, expected: id)
        let n = header.count
        let k = try r.readCount("the kept count", limit: n)
        let mu = try r.readFloat("the mean magnitude")
        guard mu.isFinite && mu >= 0 else { throw CodecError(.nonFinite, "mean magnitude is \(mu)") }
        guard k <= r.remaining else { throw CodecError(.truncated, "\(k) indices cannot fit in \(r.remaining) bytes") }
        var indices = [UInt32](repeating: 0, count: k)
        var next: UInt64 = 0
        for j in 0..<k {
            let gap = try r.readVarint("an index gap")
            guard gap < UInt64(n), next + gap < UInt64(n) else {
                throw CodecError(.indexOutOfRange, "index \(j) lies beyond the \(n) elements")
            }
            indices[j] = UInt32(next + gap)
            next += gap + 1
        }
        let signs = try SignBits.read(count: k, from: &r, positive: mu, negative: -mu)
        return .sparse(count: n, indices: indices, values: signs)
    }
}
