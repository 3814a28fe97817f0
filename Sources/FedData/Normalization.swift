/// How pixel bytes `0...255` become `Float`s.
///
/// The arithmetic follows PyTorch exactly: `ToTensor` computes `Float(byte) / 255` and
/// `Normalize` then computes `(x - mean) / std`, each rounded in `Float`.
public enum Normalization: Sendable, Hashable {
    /// `byte / 255`, in `[0, 1]` (PyTorch's `ToTensor`; the default).
    case unitRange
    /// `(byte / 255 - mean) / std`.
    case standardize(mean: Float, std: Float)

    /// Fashion-MNIST's training-set mean and standard deviation.
    public static let fashionMNIST = Normalization.standardize(mean: 0.2860, std: 0.3530)

    /// The value the byte `byte` maps to.
    public func value(forByte byte: UInt8) -> Float {
        let unit = Float(byte) / 255
        switch self {
        case .unitRange: return unit
        case .standardize(let mean, let std): return (unit - mean) / std
        }
    }

    /// `value(forByte:)` for all 256 bytes, so decoding is one table load per pixel.
    func lookupTable() -> [Float] {
        (0...255).map { value(forByte: UInt8($0)) }
    }

    /// Decodes `bytes` into `destination` (equal counts) through the lookup table.
    func decode(_ bytes: UnsafeBufferPointer<UInt8>, into destination: UnsafeMutableBufferPointer<Float>) {
        precondition(bytes.count == destination.count, "\(bytes.count) bytes for \(destination.count) floats")
        let table = lookupTable()
        table.withUnsafeBufferPointer { table in
            guard let src = bytes.baseAddress, let dst = destination.baseAddress, let lut = table.baseAddress
            else { return }
            for i in 0..<bytes.count {
                dst[i] = lut[Int(src[i])]
            }
        }
    }
}
