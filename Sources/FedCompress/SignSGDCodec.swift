/// signSGD: one bit per element, optionally scaled (EF-signSGD's compressor).
///
/// Unscaled: `decoded_i = +1` if `v_i ≥ 0` else `−1` (zero counts as positive).
/// Scaled (Karimireddy et al. 2019): `decoded_i = (‖v‖₁ / n) · sign(v_i)`.
/// EF-signSGD is this codec with `scaled: true` plus error feedback, which lives with the client:
/// it sends `C(g + e)` and keeps the residual `e ← g + e − C(g + e)`. The codec itself is biased.
///
/// Payload: header · u8 scaled · (float32 ‖v‖₁/n if scaled) · ⌈n/8⌉ bytes of sign bits, LSB first,
/// 1 = negative.
public struct SignSGDCodec: Codec {
    public let scaled: Bool

    public init(scaled: Bool = false) { self.scaled = scaled }

    public var id: CodecID { .signSGD }
    public var name: String { "signsgd(scaled=\(scaled))" }

    public func encode(_ values: UnsafeBufferPointer<Float>, context: CodecContext) throws -> [UInt8] {
        let n = values.count
        var w = PayloadWriter(capacity: 20 + (n + 7) / 8)
        CodecHeader(codec: id, count: n).write(to: &w)
        w.write(UInt8(scaled ? 1 : 0))
        if scaled {
            var l1: Double = 0
            for v in values { l1 += Double(abs(v)) }
            let scale = n == 0 ? 0 : Float(l1 / Double(n))
            guard scale.isFinite else { throw CodecError(.nonFinite, "the L1 norm is not finite") }
            w.write(scale)
        }
        var bw = BitWriter(capacity: (n + 7) / 8)
        for v in values { bw.write(bit: v < 0) }
        w.write(bytes: bw.finish())
        return w.bytes
    }

    public func decode(_ payload: [UInt8]) throws -> DecodedUpdate {
        var r = PayloadReader(payload)
        let header = try CodecHeader.read(from: &r, expected: id)
        let n = header.count
        let flag = try r.readUInt8("the scaled flag")
        guard flag <= 1 else { throw CodecError(.invalidParameter, "scaled flag \(flag) is not 0 or 1") }
        var scale: Float = 1
        if flag == 1 {
            scale = try r.readFloat("the scale")
            guard scale.isFinite && scale >= 0 else { throw CodecError(.nonFinite, "scale is \(scale)") }
        }
        return .dense(try SignBits.read(count: n, from: &r, positive: scale, negative: -scale))
    }
}
