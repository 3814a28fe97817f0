/// Decoding of a trailing packed bit array (LSB first, one bit per element) that ends the payload,
/// shared by the one-bit codecs.
enum SignBits {
    /// Reads exactly `⌈count/8⌉` remaining bytes and maps bit 0 to `positive`, bit 1 to `negative`;
    /// throws unless they are exactly the rest of the payload.
    static func read(count n: Int, from r: inout PayloadReader, positive: Float, negative: Float) throws -> [Float] {
        let byteCount = (n + 7) / 8
        guard r.remaining == byteCount else {
            throw CodecError(.countMismatch, "\(n) sign bits need \(byteCount) bytes, \(r.remaining) follow")
        }
        let bytes = try r.readBytes(byteCount, "the sign bits")
        var out = [Float](repeating: 0, count: n)
        bytes.withUnsafeBufferPointer { b in
            out.withUnsafeMutableBufferPointer { o in
                let whole = n >> 3
                for byte in 0..<whole {
                    let bits = b[byte]
                    let base = byte << 3
                    for j in 0..<8 { o[base + j] = (bits >> UInt8(j)) & 1 == 0 ? positive : negative }
                }
                for i in (whole << 3)..<n { o[i] = (b[i >> 3] >> UInt8(i & 7)) & 1 == 0 ? positive : negative }
            }
        }
        try r.finish()
        return out
    }
}
