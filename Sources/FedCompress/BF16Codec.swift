/// bfloat16: each value rounded to the nearest bfloat16 (8 exponent bits, 7 mantissa bits, ties
/// to even), 2 bytes per element. Same range as float32; NaN and ±infinity are preserved.
///
/// Payload: header, then `count` little-endian UInt16 bit patterns.
public struct BF16Codec: Codec {
    public init() {}
    public var id: CodecID { .bf16 }
    public var name: String { "bf16" }

    public func encode(_ values: UnsafeBufferPointer<Float>, context: CodecContext) throws -> [UInt8] {
        HalfPrecisionPayload.encode(values, codec: id, toBits: HalfPrecision.bf16Bits)
    }

    public func decode(_ payload: [UInt8]) throws -> DecodedUpdate {
        .dense(
            try HalfPrecisionPayload.decode(payload, codec: id, fromBits: HalfPrecision.float(bf16Bits:)))
    }
}
