import FedTensor

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
                try r.readBytes(2 * k, "the kept values").withUnsafeBytes {
                    HalfPrecisionPayload.widen($0, into: out, fromBits: HalfPrecision.float(fp16Bits:))
                }
            }
            // The offending index is looked up only on failure.
            if !VectorKernels.allFinite(UnsafeBufferPointer(out)), let j = out.firstIndex(where: { !$0.isFinite }) {
                throw CodecError(.nonFinite, "kept value \(j) is \(out[j])")
            }
        }
        return values
    }
}
