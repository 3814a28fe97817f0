/// Sparse ternary compression (Sattler et al. 2019): the top-k elements by magnitude, each sent as
/// its sign times their common mean magnitude.
///
/// `k = min(n, max(1, ⌈ratio · n⌉))` (0 when n = 0); `K` = the k indices of largest `|v_i|`, ties
/// broken towards lower indices; `μ = (1/k) Σ_{i∈K} |v_i|`; `decoded_i = μ · sign(v_i)` for `i ∈ K`,
/// 0 elsewhere (returned sparse). Biased; pair with error feedback on the client.
///
/// Selection is O(n): a 2¹⁶-bin histogram of the high half of the magnitudes' bit patterns (which
/// order like the magnitudes), then a second histogram of the low half inside the threshold bin,
/// gives the exact k-th largest magnitude.
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
    public func keptCount(_ n: Int) -> Int { n == 0 ? 0 : min(n, max(1, Int((ratio * Double(n)).rounded(.up)))) }

    public func encode(_ values: UnsafeBufferPointer<Float>, context: CodecContext) throws -> [UInt8] {
        let n = values.count
        let k = keptCount(n)
        var kept = [UInt32]()
        kept.reserveCapacity(k)
        var sum: Double = 0
        if k > 0 {
            var histogram = [Int](repeating: 0, count: 1 << 16)
            let (threshold, aboveCount) = histogram.withUnsafeMutableBufferPointer { h -> (UInt32, Int) in
                for v in values { h[Int(v.magnitude.bitPattern >> 16)] += 1 }
                var above = 0
                var high = (1 << 16) - 1
                while above + h[high] < k {
                    above += h[high]
                    high -= 1
                }
                for i in 0..<h.count { h[i] = 0 }
                let prefix = UInt32(high) << 16
                for v in values where v.magnitude.bitPattern & 0xFFFF_0000 == prefix {
                    h[Int(v.magnitude.bitPattern & 0xFFFF)] += 1
                }
                var low = (1 << 16) - 1
                while above + h[low] < k {
                    above += h[low]
                    low -= 1
                }
                return (prefix | UInt32(low), above)
            }
            var ties = k - aboveCount
            for i in 0..<n {
                let m = values[i].magnitude.bitPattern
                if m > threshold || (m == threshold && ties > 0) {
                    if m == threshold { ties -= 1 }
                    kept.append(UInt32(i))
                    sum += Double(values[i].magnitude)
                }
            }
        }
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
