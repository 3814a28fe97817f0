import Testing

@testable import FedCompress

/// The 56-bit-window fast paths of `BitReader` must agree with the bit-by-bit definition at every
/// window edge: runs shorter than, equal to and longer than the window, and near the stream's end.
@Suite struct BitReaderTests {
    static func reading<T>(_ bytes: [UInt8], _ body: (inout BitReader) throws -> T) throws -> T {
        try bytes.withUnsafeBufferPointer { buf in
            var r = BitReader(buf, byteOffset: 0, byteCount: buf.count)
            return try body(&r)
        }
    }

    @Test func unaryCodesOfEveryLengthAroundTheWindowRoundTrip() throws {
        // Lengths 0…130 cross the 56-bit window twice; a 3-bit field after each shifts the alignment.
        var w = BitWriter()
        for q in 0...130 {
            w.writeUnary(q)
            w.write(UInt64(q % 8), bits: 3)
        }
        let bytes = w.finish()
        let (runs, tags, left) = try Self.reading(bytes) { r -> ([Int], [UInt64], Int) in
            var runs: [Int] = []
            var tags: [UInt64] = []
            for _ in 0...130 {
                runs.append(try r.readUnary(limit: 1_000))
                tags.append(try r.read(bits: 3))
            }
            return (runs, tags, r.remainingBits)
        }
        #expect(runs == Array(0...130))
        #expect(tags == (0...130).map { UInt64($0 % 8) })
        #expect(left < 8)
    }

    @Test(arguments: [10, 55, 56, 57, 70])
    func unaryRunsLongerThanTheLimitThrow(length: Int) throws {
        var w = BitWriter()
        w.writeUnary(length)
        let bytes = w.finish()
        #expect(try Self.reading(bytes) { try $0.readUnary(limit: length) } == length)
        let error = #expect(throws: CodecError.self) { try Self.reading(bytes) { try $0.readUnary(limit: length - 1) } }
        #expect(error?.code == .indexOutOfRange)
    }

    @Test func aUnaryRunWithoutItsZeroAtTheEndOfTheStreamIsTruncated() throws {
        // 16 one bits and nothing after them: the terminating zero is missing.
        let error = #expect(throws: CodecError.self) {
            try Self.reading([0xFF, 0xFF]) { try $0.readUnary(limit: 100) }
        }
        #expect(error?.code == .truncated)
        // One zero bit at the very end terminates a run of 15.
        #expect(try Self.reading([0xFF, 0x7F]) { try $0.readUnary(limit: 100) } == 15)
    }

    @Test(arguments: [1, 5, 13, 56])
    func fieldsReadInBulkEqualFieldsReadOneByOne(bits: Int) throws {
        var w = BitWriter()
        var expected: [UInt64] = []
        let count = 100
        for j in 0..<count {
            let v = (UInt64(j) &* 0x9E37_79B9_7F4A_7C15) & (UInt64.max >> UInt64(64 - bits))
            expected.append(v)
            w.write(v, bits: bits)
        }
        let bytes = w.finish()
        let (bulk, positions) = try Self.reading(bytes) { r -> ([UInt64], [Int]) in
            var got: [UInt64] = []
            var at: [Int] = []
            try r.readFields(count: count, bits: bits) { j, v in
                at.append(j)
                got.append(v)
            }
            try r.checkPadding()
            return (got, at)
        }
        #expect(bulk == expected)
        #expect(positions == Array(0..<count))
        // One field more than the stream holds is refused before any is read.
        var calls = 0
        let error = #expect(throws: CodecError.self) {
            try Self.reading(bytes) { r in
                try r.readFields(count: bytes.count * 8 / bits + 1, bits: bits) { _, _ in calls += 1 }
            }
        }
        #expect(error?.code == .truncated)
        #expect(calls == 0)
    }
}
