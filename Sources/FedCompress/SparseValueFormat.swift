/// How a sparse codec stores its kept values.
public enum SparseValueFormat: UInt8, Sendable, CaseIterable {
    /// 4 bytes per value, lossless.
    case fp32 = 0
    /// 2 bytes per value, rounded to the nearest IEEE half (ties to even).
    case fp16 = 1

    /// Bytes per stored value.
    public var byteWidth: Int { self == .fp32 ? 4 : 2 }
}

extension SparseValueFormat {
    /// Reads `k` kept values stored in this format; any non-finite value is a thrown `nonFinite`.
    func readValues(_ k: Int, from r: inout PayloadReader) throws -> [Float] {
        var values = [Float](repeating: 0, count: k)
        try values.withUnsafeMutableBufferPointer { out in
            switch self {
            case .fp32:
                try r.readFloats(k, into: out, "the kept values")
            case .fp16:
                let bytes = try r.readBytes(2 * k, "the kept values")
                bytes.withUnsafeBytes { raw in
                    for j in 0..<k {
                        out[j] = HalfPrecision.float(
                            fp16Bits: UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * j, as: UInt16.self)))
                    }
                }
            }
            // One pass without a branch per value; the offending index is looked up only on failure.
            var allFinite = true
            for v in out { allFinite = allFinite && v.isFinite }
            if !allFinite, let j = out.firstIndex(where: { !$0.isFinite }) {
                throw CodecError(.nonFinite, "kept value \(j) is \(out[j])")
            }
        }
        return values
    }
}
