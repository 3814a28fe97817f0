/// Appends little-endian fields to a byte buffer. Encoders build payloads with it.
public struct PayloadWriter: Sendable {
    public private(set) var bytes: [UInt8]

    public init(capacity: Int = 0) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    public mutating func write(_ v: UInt8) { bytes.append(v) }
    public mutating func write(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    public mutating func write(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    public mutating func write(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    public mutating func write(_ v: Float) { write(v.bitPattern) }
    public mutating func write(_ v: Double) { write(v.bitPattern) }

    /// LEB128 unsigned varint.
    public mutating func writeVarint(_ v: UInt64) {
        var x = v
        while x >= 0x80 {
            bytes.append(UInt8(x & 0x7F) | 0x80)
            x >>= 7
        }
        bytes.append(UInt8(x))
    }

    public mutating func write(bytes other: some Sequence<UInt8>) { bytes += other }

    /// Raw float32 values, little-endian.
    public mutating func write(floats: UnsafeBufferPointer<Float>) {
        #if _endian(little)
            bytes += UnsafeRawBufferPointer(floats)
        #else
            for v in floats { write(v) }
        #endif
    }
}
