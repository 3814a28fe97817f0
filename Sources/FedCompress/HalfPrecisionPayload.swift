/// The dense 16-bit payload shared by `FP16Codec` and `BF16Codec`: header, then one
/// little-endian UInt16 per element.
enum HalfPrecisionPayload {
    @inline(__always)
    static func encode(
        _ values: UnsafeBufferPointer<Float>, codec: CodecID, toBits: (Float) -> UInt16
    ) -> [UInt8] {
        var w = PayloadWriter(capacity: 16 + 2 * values.count)
        CodecHeader(codec: codec, count: values.count).write(to: &w)
        let start = w.bytes.count
        w.write(bytes: repeatElement(0, count: 2 * values.count))
        var bytes = w.bytes
        bytes.withUnsafeMutableBytes { raw in
            let out = raw.baseAddress! + start
            for i in 0..<values.count {
                out.storeBytes(of: toBits(values[i]).littleEndian, toByteOffset: 2 * i, as: UInt16.self)
            }
        }
        return bytes
    }

    @inline(__always)
    static func decode(
        _ payload: [UInt8], codec: CodecID, fromBits: (UInt16) -> Float
    ) throws
        -> [Float]
    {
        var r = PayloadReader(payload)
        let header = try CodecHeader.read(from: &r, expected: codec)
        guard header.count <= r.remaining / 2 else {
            throw CodecError(
                .truncated, "header announces \(header.count) values but only \(r.remaining) bytes follow")
        }
        let start = r.offset
        _ = try r.readBytes(2 * header.count, "the values")
        try r.finish()
        var out = [Float](repeating: 0, count: header.count)
        payload.withUnsafeBytes { raw in
            out.withUnsafeMutableBufferPointer {
                widen(UnsafeRawBufferPointer(rebasing: raw[start...]), into: $0, fromBits: fromBits)
            }
        }
        return out
    }

    /// Converts the little-endian 16-bit patterns at the start of `raw` into `dst` (one per element).
    @inline(__always)
    static func widen(
        _ raw: UnsafeRawBufferPointer, into dst: UnsafeMutableBufferPointer<Float>, fromBits: (UInt16) -> Float
    ) {
        precondition(raw.count >= 2 * dst.count)
        for i in 0..<dst.count {
            dst[i] = fromBits(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
        }
    }
}
