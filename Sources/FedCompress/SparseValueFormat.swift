/// How a sparse codec stores its kept values.
public enum SparseValueFormat: UInt8, Sendable, CaseIterable {
    /// 4 bytes per value, lossless.
    case fp32 = 0
    /// 2 bytes per value, rounded to the nearest IEEE half (ties to even).
    case fp16 = 1

    /// Bytes per stored value.
    public var byteWidth: Int { self == .fp32 ? 4 : 2 }
}
