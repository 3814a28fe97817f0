/// Reads bit fields least-significant bit first from untrusted bytes; every read is
/// bounds-checked and running past the end is a thrown `CodecError`.
struct BitReader {
    private let bytes: [UInt8]
    private let start: Int
    private var byte: Int
    private var bit = 0

    init(_ bytes: [UInt8], offset: Int) {
        self.bytes = bytes
        start = offset
        byte = offset
    }

    /// Bytes touched so far, counting a partly read byte as whole.
    var consumedBytes: Int { byte - start + (bit > 0 ? 1 : 0) }

    mutating func readBit() throws -> UInt32 {
        guard byte < bytes.count else {
            throw CodecError(.truncated, "payload ends inside a bit stream at byte \(byte)")
        }
        let v = UInt32(bytes[byte] >> UInt8(bit)) & 1
        bit += 1
        if bit == 8 {
            bit = 0
            byte += 1
        }
        return v
    }

    /// `count` (≤ 32) bits, least significant first.
    mutating func read(bits count: Int) throws -> UInt32 {
        var v: UInt32 = 0
        for i in 0..<count { v |= try readBit() << UInt32(i) }
        return v
    }

    /// A run of one bits ended by a zero bit; throws once the run exceeds `limit`.
    mutating func readUnary(limit: Int) throws -> Int {
        var q = 0
        while try readBit() == 1 {
            q += 1
            guard q <= limit else {
                throw CodecError(.indexOutOfRange, "unary run longer than \(limit) at byte \(byte)")
            }
        }
        return q
    }

    /// Throws unless the bits left in the current byte are zero (canonical padding).
    func checkPadding() throws {
        guard bit > 0 else { return }
        guard bytes[byte] >> UInt8(bit) == 0 else {
            throw CodecError(.invalidHeader, "non-zero padding bits after a bit stream at byte \(byte)")
        }
    }
}
