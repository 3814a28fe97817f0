import FedTensor

/// The uncompressed wire format of a model or an update: a 16-byte header (magic `FSD1`,
/// format version, element count) followed by little-endian float32 values. Its size is what the
/// virtual clock and the byte metrics count.
public enum DensePayload {
    static let magic: [UInt8] = Array("FSD1".utf8)
    static let version: UInt32 = 1
    public static let headerSize = 16

    /// Payload size for `count` values.
    public static func size(count: Int) -> Int { headerSize + 4 * count }

    /// Encodes `values` into `bytes` (reusing its capacity).
    public static func encode(_ values: UnsafeBufferPointer<Float>, into bytes: inout [UInt8]) {
        bytes.removeAll(keepingCapacity: true)
        bytes.reserveCapacity(size(count: values.count))
        bytes += magic
        withUnsafeBytes(of: version.littleEndian) { bytes += $0 }
        withUnsafeBytes(of: UInt64(values.count).littleEndian) { bytes += $0 }
        #if _endian(little)
            bytes += UnsafeRawBufferPointer(values)
        #else
            for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes += $0 } }
        #endif
    }

    /// Decodes a payload into `values`, which must have the advertised length.
    /// - Throws: `PayloadError` for a wrong magic, version or length, or a non-finite value.
    public static func decode(_ bytes: [UInt8], into values: UnsafeMutableBufferPointer<Float>) throws {
        guard bytes.count >= headerSize else {
            throw PayloadError("payload of \(bytes.count) bytes is shorter than its header")
        }
        guard Array(bytes[0..<4]) == magic else { throw PayloadError("not a dense payload (bad magic)") }
        let version = bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 4, as: UInt32.self).littleEndian }
        guard version == Self.version else { throw PayloadError("unsupported payload version \(version)") }
        let count = bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 8, as: UInt64.self).littleEndian }
        guard count == UInt64(values.count) else {
            throw PayloadError("payload holds \(count) values, expected \(values.count)")
        }
        guard bytes.count == size(count: values.count) else {
            throw PayloadError("payload is \(bytes.count) bytes, expected \(size(count: values.count))")
        }
        bytes.withUnsafeBytes { raw in
            #if _endian(little)
                UnsafeMutableRawPointer(values.baseAddress!).copyMemory(
                    from: raw.baseAddress! + headerSize, byteCount: 4 * values.count)
            #else
                for i in 0..<values.count {
                    values[i] = Float(
                        bitPattern: raw.loadUnaligned(fromByteOffset: headerSize + 4 * i, as: UInt32.self).littleEndian)
                }
            #endif
        }
        let finite = VectorKernels.allFinite(UnsafeBufferPointer(values))
        guard finite else { throw PayloadError("payload contains NaN or infinite values") }
    }
}

/// A malformed or hostile payload.
public struct PayloadError: Error, CustomStringConvertible, Sendable {
    public let message: String
    init(_ message: String) { self.message = message }
    public var description: String { message }
}
