/// Appends bit fields least-significant bit first; the last byte is padded with zero bits.
struct BitWriter {
    private(set) var bytes: [UInt8] = []
    private var buffer: UInt64 = 0
    private var used = 0

    init(capacity: Int = 0) { bytes.reserveCapacity(capacity) }

    /// The low `count` (≤ 32) bits of `value`.
    mutating func write(_ value: UInt32, bits count: Int) {
        precondition(count >= 0 && count <= 32)
        let mask: UInt64 = count == 32 ? 0xFFFF_FFFF : (1 << UInt64(count)) - 1
        buffer |= (UInt64(value) & mask) << UInt64(used)
        used += count
        while used >= 8 {
            bytes.append(UInt8(truncatingIfNeeded: buffer))
            buffer >>= 8
            used -= 8
        }
    }

    /// `q` one bits followed by a zero bit.
    mutating func writeUnary(_ q: Int) {
        var q = q
        while q >= 31 {
            write(0x7FFF_FFFF, bits: 31)
            q -= 31
        }
        write((1 << UInt32(q)) - 1, bits: q + 1)
    }

    /// The bytes written, the last one zero-padded.
    mutating func finish() -> [UInt8] {
        if used > 0 {
            bytes.append(UInt8(truncatingIfNeeded: buffer))
            buffer = 0
            used = 0
        }
        return bytes
    }
}
