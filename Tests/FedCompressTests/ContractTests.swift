import Testing

@testable import FedCompress

@Suite struct ContractTests {
    @Test func identityRoundTripsBitExactlyWithTheFormulaSize() throws {
        let v: [Float] = [1, -0.0, .infinity, Float.leastNonzeroMagnitude, .nan, 7]
        let bytes = try IdentityCodec().encode(v)
        // magic 3 + version 1 + id 1 + varint(6) 1 + 6·4
        #expect(bytes.count == 6 + 24)
        guard case .dense(let out) = try IdentityCodec().decode(bytes) else {
            Issue.record("not dense")
            return
        }
        #expect(out.map(\.bitPattern) == v.map(\.bitPattern))
    }

    @Test func readerRejectsTruncationOverflowAndTrailingBytes() throws {
        let bytes = try IdentityCodec().encode([1, 2, 3])
        for cut in 0..<bytes.count {
            #expect(throws: CodecError.self) { try IdentityCodec().decode(Array(bytes.prefix(cut))) }
        }
        #expect(throws: CodecError.self) { try IdentityCodec().decode(bytes + [0]) }
        var hostile = PayloadWriter()
        CodecHeader(codec: .identity, count: 0).write(to: &hostile)
        var huge = Array(hostile.bytes.dropLast())
        huge += [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F]
        #expect(throws: CodecError.self) { try IdentityCodec().decode(huge) }
        var wrong = bytes
        wrong[4] = CodecID.topK.rawValue
        #expect {
            try IdentityCodec().decode(wrong)
        } throws: { error in
            (error as? CodecError)?.message == "payload was made by topk, expected identity"
        }
        var magic = bytes
        magic[0] = 0
        #expect(throws: CodecError.self) { try IdentityCodec().decode(magic) }
    }

    @Test func varintsRoundTripAtTheirBoundaries() throws {
        var w = PayloadWriter()
        let values: [UInt64] = [0, 127, 128, 16_383, 16_384, UInt64(UInt32.max), UInt64.max]
        for v in values { w.writeVarint(v) }
        #expect(w.bytes.count == 1 + 1 + 2 + 2 + 3 + 5 + 10)
        var r = PayloadReader(w.bytes)
        for v in values { #expect(try r.readVarint() == v) }
        try r.finish()
    }

    @Test func sparseDensifies() {
        let s = DecodedUpdate.sparse(count: 5, indices: [1, 4], values: [2, -3])
        #expect(s.densified() == [0, 2, 0, 0, -3])
        #expect(s.count == 5)
    }
}
