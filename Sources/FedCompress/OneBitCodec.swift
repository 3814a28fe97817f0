/// 1-bit SGD (Seide et al. 2014): one bit per element plus the mean of each of the two groups.
///
/// With `P = {i : v_i ≥ 0}` and `N = {i : v_i < 0}`, `μ₊ = mean_{i∈P} v_i`, `μ₋ = mean_{i∈N} v_i`
/// (0 for an empty group); `decoded_i = μ₊` for `i ∈ P`, `μ₋` for `i ∈ N`. The paper pairs this with
/// error feedback (the quantisation residual is added to the next gradient), which lives with the
/// client, not the codec. Biased.
///
/// Payload: header · float32 μ₊ · float32 μ₋ · ⌈n/8⌉ bytes of bits, LSB first, 1 = negative group.
public struct OneBitCodec: Codec {
    public init() {}

    public var id: CodecID { .oneBit }
    public var name: String { "onebit" }

    public func encode(_ values: UnsafeBufferPointer<Float>, context: CodecContext) throws -> [UInt8] {
        let n = values.count
        var positiveSum: Double = 0
        var negativeSum: Double = 0
        var negatives = 0
        // Branch-free: signs of a gradient are close to coin flips.
        for v in values {
            let x = Double(v)
            let negative = v < 0
            negativeSum += negative ? x : 0
            positiveSum += negative ? 0 : x
            negatives += negative ? 1 : 0
        }
        let positives = n - negatives
        let meanPositive = positives == 0 ? 0 : Float(positiveSum / Double(positives))
        let meanNegative = negatives == 0 ? 0 : Float(negativeSum / Double(negatives))
        guard meanPositive.isFinite && meanNegative.isFinite else {
            throw CodecError(.nonFinite, "a group mean is not finite")
        }
        var w = PayloadWriter(capacity: 24 + (n + 7) / 8)
        CodecHeader(codec: id, count: n).write(to: &w)
        w.write(meanPositive)
        w.write(meanNegative)
        var bw = BitWriter(capacity: (n + 7) / 8)
        for v in values { bw.write(bit: v < 0) }
        w.write(bytes: bw.finish())
        return w.bytes
    }

    public func decode(_ payload: [UInt8]) throws -> DecodedUpdate {
        var r = PayloadReader(payload)
        let header = try CodecHeader.read(from: &r, expected: id)
        let meanPositive = try r.readFloat("the non-negative mean")
        let meanNegative = try r.readFloat("the negative mean")
        guard meanPositive.isFinite && meanNegative.isFinite else {
            throw CodecError(.nonFinite, "group means are \(meanPositive) and \(meanNegative)")
        }
        return .dense(try SignBits.read(count: header.count, from: &r, positive: meanPositive, negative: meanNegative))
    }
}
