/// Reads bit fields written by `BitWriter` from an untrusted byte range: every read is
/// bounds-checked against the range and a short range is a thrown `CodecError`.
///
/// The reader borrows `bytes`; use it only inside the `withUnsafeBufferPointer` call that made it.
public struct BitReader {
    let bytes: UnsafeBufferPointer<UInt8>
    let endByte: Int
    /// Position of the next bit, counted from bit 0 of `bytes[0]`.
    public private(set) var bitOffset: Int
    let startBit: Int

    /// A reader over `bytes[byteOffset ..< byteOffset + byteCount]`.
    public init(_ bytes: UnsafeBufferPointer<UInt8>, byteOffset: Int, byteCount: Int) {
        precondition(byteOffset >= 0 && byteCount >= 0 && byteOffset + byteCount <= bytes.count)
        self.bytes = bytes
        self.endByte = byteOffset + byteCount
        self.bitOffset = byteOffset * 8
        self.startBit = byteOffset * 8
    }

    /// Bits left in the range.
    public var remainingBits: Int { endByte * 8 - bitOffset }

    /// Whole bytes touched so far (a partly read byte counts).
    public var bytesConsumed: Int { (bitOffset - startBit + 7) / 8 }

    /// The next `bits` bits (0...56) as an unsigned value, first bit least significant.
    public mutating func read(bits: Int, _ what: String = "a bit field") throws -> UInt64 {
        precondition(bits >= 0 && bits <= 56)
        guard bits <= remainingBits else {
            throw CodecError(.truncated, "bit stream ends inside \(what): need \(bits) bits, \(remainingBits) left")
        }
        if bits == 0 { return 0 }
        let value = peek(bits: bits)
        bitOffset += bits
        return value
    }

    /// Reads `count` consecutive fields of `bits` bits (1...56), passing each to `body` with its
    /// position `0..<count`; one bounds check covers them all.
    @inline(__always)
    public mutating func readFields(
        count: Int, bits: Int, _ what: String = "bit fields", _ body: (Int, UInt64) throws -> Void
    ) throws {
        precondition(bits >= 1 && bits <= 56 && count >= 0)
        guard count <= remainingBits / bits else {
            throw CodecError(
                .truncated, "bit stream ends inside \(what): need \(count) × \(bits) bits, \(remainingBits) left")
        }
        for j in 0..<count {
            try body(j, peek(bits: bits))
            bitOffset += bits
        }
    }

    /// The next bit.
    public mutating func readBit(_ what: String = "a bit") throws -> Bool { try read(bits: 1, what) == 1 }

    /// An Elias-gamma coded value (see `BitWriter.writeEliasGamma`) of at most `maxBits` significant
    /// bits (≤ 32); longer codes are rejected before they are read.
    public mutating func readEliasGamma(maxBits: Int, _ what: String = "an Elias-gamma code") throws -> UInt64 {
        precondition(maxBits >= 1 && maxBits <= 32)
        // Fast path: the whole code (z zeros, a one, z bits) lies in one 56-bit window.
        let window = min(56, remainingBits)
        if window > 0 {
            let word = peek(bits: window)
            let zeros = word.trailingZeroBitCount
            if zeros < maxBits && 2 * zeros + 1 <= window {
                bitOffset += 2 * zeros + 1
                let low = (word >> UInt64(zeros + 1)) & ((1 << UInt64(zeros)) - 1)
                return (1 << UInt64(zeros)) | low
            }
        }
        var zeros = 0
        while !(try readBit(what)) {
            zeros += 1
            guard zeros < maxBits else {
                throw CodecError(.invalidParameter, "\(what) is longer than \(maxBits) bits at bit \(bitOffset)")
            }
        }
        return (1 << UInt64(zeros)) | (try read(bits: zeros, what))
    }

    /// The next `bits` bits (1...56, all within the range) without consuming them.
    private func peek(bits: Int) -> UInt64 {
        let byte = bitOffset >> 3
        let shift = UInt64(bitOffset & 7)
        var word: UInt64
        if byte + 8 <= endByte {
            word = UInt64(littleEndian: UnsafeRawPointer(bytes.baseAddress! + byte).loadUnaligned(as: UInt64.self))
        } else {
            word = 0
            for i in 0..<(endByte - byte) { word |= UInt64(bytes[byte + i]) << UInt64(8 * i) }
        }
        return (word >> shift) & (UInt64.max >> UInt64(64 - bits))
    }

    /// A run of one bits ended by a zero bit; throws once the run exceeds `limit`.
    public mutating func readUnary(limit: Int, _ what: String = "a unary code") throws -> Int {
        // Fast path: the run and its terminating zero lie in one 56-bit window.
        let window = min(56, remainingBits)
        if window > 0 {
            let ones = (~peek(bits: window)).trailingZeroBitCount
            if ones < window && ones <= limit {
                bitOffset += ones + 1
                return ones
            }
        }
        var q = 0
        while try readBit(what) {
            q += 1
            guard q <= limit else {
                throw CodecError(.indexOutOfRange, "\(what) runs longer than \(limit) at bit \(bitOffset)")
            }
        }
        return q
    }

    /// Throws unless the unread bits of the current byte are zero (canonical padding).
    public func checkPadding() throws {
        let used = bitOffset & 7
        guard used > 0 else { return }
        guard bytes[bitOffset >> 3] >> UInt8(used) == 0 else {
            throw CodecError(.invalidHeader, "non-zero padding bits after a bit stream at byte \(bitOffset >> 3)")
        }
    }
}
