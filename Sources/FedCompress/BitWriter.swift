/// Appends fields of 1…56 bits to a byte buffer, least significant bit first (bit 0 of byte 0 is
/// the first bit written). The last byte is padded with zero bits by `finish()`.
public struct BitWriter: Sendable {
    @usableFromInline var buffer: [UInt8]
    @usableFromInline var accumulator: UInt64 = 0
    @usableFromInline var filled = 0

    /// A writer expecting about `capacity` bytes.
    public init(capacity: Int = 0) {
        buffer = []
        buffer.reserveCapacity(capacity)
    }

    /// Number of bits written so far.
    public var bitCount: Int { buffer.count * 8 + filled }

    /// Writes the low `bits` bits of `value` (`bits` in 0...56).
    @inlinable
    public mutating func write(_ value: UInt64, bits: Int) {
        precondition(bits >= 0 && bits <= 56, "BitWriter fields are 0...56 bits")
        let masked = bits == 0 ? 0 : value & (UInt64.max >> UInt64(64 - bits))
        accumulator |= masked << UInt64(filled)
        filled += bits
        while filled >= 8 {
            buffer.append(UInt8(truncatingIfNeeded: accumulator))
            accumulator >>= 8
            filled -= 8
        }
    }

    /// Writes one bit.
    @inlinable
    public mutating func write(bit: Bool) { write(bit ? 1 : 0, bits: 1) }

    /// `q` one bits followed by a zero bit (the quotient of a Rice code).
    public mutating func writeUnary(_ q: Int) {
        var q = q
        while q >= 48 {
            write((1 << 48) - 1, bits: 48)
            q -= 48
        }
        write((1 << UInt64(q)) - 1, bits: q + 1)
    }

    /// Elias-gamma code of `value` ≥ 1: N = ⌊log₂ value⌋ zero bits, a one bit, then the low N bits of
    /// `value` (least significant first). `value` = 1 takes one bit; at most 2·32 − 1 bits for
    /// values below 2³².
    public mutating func writeEliasGamma(_ value: UInt64) {
        precondition(value >= 1 && value < 1 << 32, "Elias gamma codes values in 1..<2^32")
        let n = 63 - value.leadingZeroBitCount
        write(0, bits: n)
        write(1, bits: 1)
        write(value, bits: n)
    }

    /// The bytes written, the last one padded with zero bits.
    public mutating func finish() -> [UInt8] {
        if filled > 0 {
            buffer.append(UInt8(truncatingIfNeeded: accumulator))
            accumulator = 0
            filled = 0
        }
        return buffer
    }
}
