/// IEEE half precision (binary16): each value rounded to the nearest fp16 (ties to even), 2 bytes
/// per element. NaN and ±infinity are preserved; magnitudes above 65 504 round to infinity.
///
/// Payload: header, then `count` little-endian UInt16 bit patterns.
public struct FP16Codec: Codec {
    public init() {}
    public var id: CodecID { .fp16 }
    public var name: String { "fp16" }

    public func encode(_ values: UnsafeBufferPointer<Float>, context: CodecContext) throws -> [UInt8] {
        HalfPrecisionPayload.encode(values, codec: id, toBits: HalfPrecision.fp16Bits)
    }

    public func decode(_ payload: [UInt8]) throws -> DecodedUpdate {
        .dense(
            try HalfPrecisionPayload.decode(payload, codec: id, fromBits: HalfPrecision.float(fp16Bits:)))
    }
}
