import FedTensor
import Testing

@testable import FedCompress

private func sparse(_ u: DecodedUpdate) -> (count: Int, indices: [UInt32], values: [Float])? {
    guard case .sparse(let n, let i, let v) = u else { return nil }
    return (n, i, v)
}

private func randomVector(_ n: Int, seed: UInt64) -> [Float] {
    var rng = SeededRNG(seed: seed)
    return (0..<n).map { _ in rng.nextNormal() }
}

/// The raw zlib stream of `bytes` (a `ZlibBlock` without its length varint).
private func zlibStream(_ bytes: [UInt8]) throws -> [UInt8] {
    var w = PayloadWriter()
    try ZlibBlock.write(bytes, to: &w)
    return Array(w.bytes.dropFirst(SparseIndexCoding.varintLength(UInt64(bytes.count))))
}

/// A composite payload of `n` elements whose deflated block claims `claimed` bytes.
private func deflatedPayload(count n: Int, claimed: Int, stream: [UInt8]) -> [UInt8] {
    var w = PayloadWriter()
    CodecHeader(codec: .composite, count: n).write(to: &w)
    w.write(UInt8(1))
    w.write(UInt8(0))
    w.writeVarint(UInt64(claimed))
    w.write(bytes: stream)
    return w.bytes
}

@Suite struct CompositeCodecTests {
    @Test(arguments: [0, 1, 7, 100, 5_000])
    func fp32ValuesDecodeExactlyToTopK(n: Int) throws {
        let x = randomVector(n, seed: UInt64(n) + 1)
        let context = CodecContext(seed: 3, stream: "client/1")
        for ratio in [0.001, 0.1, 0.5, 1] {
            let topK = TopKCodec(ratio: ratio)
            let reference = try topK.decode(try topK.encode(x, context: context))
            for deflate in [false, true] {
                let codec = CompositeCodec(ratio: ratio, deflate: deflate)
                let bytes = try codec.encode(x, context: context)
                #expect(try codec.decode(bytes) == reference, "n=\(n) ratio=\(ratio) deflate=\(deflate)")
            }
            // Without deflate the payload is Top-K's plus the quantizer byte (flags replace the format byte).
            let raw = try CompositeCodec(ratio: ratio).encode(x, context: context)
            #expect(raw.count == (try topK.encode(x, context: context)).count + 1)
        }
    }

    @Test func fp16ValuesAreTheRoundedTopKValues() throws {
        let x = randomVector(3_000, seed: 11)
        let reference = sparse(try TopKCodec(ratio: 0.05).decode(try TopKCodec(ratio: 0.05).encode(x)))!
        let codec = CompositeCodec(ratio: 0.05, valueQuantizer: .fp16, deflate: true)
        let s = sparse(try codec.decode(try codec.encode(x)))!
        #expect(s.count == 3_000)
        #expect(s.indices == reference.indices)
        #expect(s.values == reference.values.map { HalfPrecision.float(fp16Bits: HalfPrecision.fp16Bits($0)) })
    }

    @Test func qsgdValuesAreWithinOneLevelOfTheKeptValues() throws {
        let x = randomVector(4_000, seed: 12)
        let reference = sparse(try TopKCodec(ratio: 0.1).decode(try TopKCodec(ratio: 0.1).encode(x)))!
        for deflate in [false, true] {
            let codec = CompositeCodec(ratio: 0.1, valueQuantizer: .qsgd(levels: 256, bucketSize: 64), deflate: deflate)
            let context = CodecContext(seed: 5, stream: "c")
            let bytes = try codec.encode(x, context: context)
            #expect(bytes == (try codec.encode(x, context: context)))
            let s = sparse(try codec.decode(bytes))!
            #expect(s.indices == reference.indices)
            for b in stride(from: 0, to: reference.values.count, by: 64) {
                let bucket = reference.values[b..<min(b + 64, reference.values.count)]
                let norm = bucket.reduce(0) { $0 + Double($1) * Double($1) }.squareRoot()
                for j in bucket.indices {
                    #expect(abs(Double(s.values[j]) - Double(reference.values[j])) <= norm / 256 * 1.0001)
                }
            }
        }
        // The worst-case inner block (every element, 2²⁴ levels, one norm per element) fits the 16·n + 64 cap.
        for n in [1, 3, 100] {
            let codec = CompositeCodec(ratio: 1, valueQuantizer: .qsgd(levels: 1 << 24, bucketSize: 1), deflate: true)
            let s = sparse(try codec.decode(try codec.encode(randomVector(n, seed: 2))))!
            #expect(s.indices.count == n)
        }
    }

    @Test func deflateShrinksACompressibleUpdateAndCostsLittleOnNoise() throws {
        // Every other element large and equal: regular indices, identical values.
        let x = (0..<20_000).map { Float($0 % 2 == 0 ? 1.5 : 0.001) }
        let raw = try CompositeCodec(ratio: 0.5).encode(x)
        let deflated = try CompositeCodec(ratio: 0.5, deflate: true).encode(x)
        #expect(deflated.count * 20 < raw.count, "\(deflated.count) vs \(raw.count)")
        #expect(
            try CompositeCodec(ratio: 0.5, deflate: true).decode(deflated)
                == (try CompositeCodec(ratio: 0.5).decode(raw)))
        // Incompressible values: deflate adds at most the stored-block overhead plus the length varint.
        let noise = randomVector(20_000, seed: 13)
        let rawNoise = try CompositeCodec(ratio: 0.5).encode(noise)
        let deflatedNoise = try CompositeCodec(ratio: 0.5, deflate: true).encode(noise)
        #expect(deflatedNoise.count <= rawNoise.count + rawNoise.count / 1000 + 24)
    }

    @Test func everyTruncationThrows() throws {
        let x = randomVector(300, seed: 14)
        let quantizers: [CompositeCodec.ValueQuantizer] = [.fp32, .fp16, .qsgd(levels: 8)]
        for q in quantizers {
            for deflate in [false, true] {
                let codec = CompositeCodec(ratio: 0.2, valueQuantizer: q, deflate: deflate)
                let bytes = try codec.encode(x)
                for cut in 0..<bytes.count {
                    #expect(throws: CodecError.self, "\(q) deflate=\(deflate) cut=\(cut)") {
                        try codec.decode(Array(bytes[..<cut]))
                    }
                }
                #expect(throws: CodecError.self) { try codec.decode(bytes + [0]) }
            }
        }
    }

    @Test func malformedFieldsThrow() throws {
        let codec = CompositeCodec(ratio: 0.2)
        let bytes = try codec.encode(randomVector(50, seed: 15))
        let flagsOffset = 6  // magic 3, version 1, id 1, varint(50) 1
        var badFlags = bytes
        badFlags[flagsOffset] = 2
        #expect(throws: CodecError.self) { try codec.decode(badFlags) }
        var badQuantizer = bytes
        badQuantizer[flagsOffset + 1] = 3
        #expect(throws: CodecError.self) { try codec.decode(badQuantizer) }
        var fakeDeflate = bytes
        fakeDeflate[flagsOffset] = 1
        #expect(throws: CodecError.self) { try codec.decode(fakeDeflate) }
        #expect(throws: CodecError.self) {
            try codec.decode(try TopKCodec(ratio: 0.2).encode(randomVector(50, seed: 15)))
        }
        var nonFinite = bytes
        nonFinite.replaceSubrange((bytes.count - 4)..., with: [0, 0, 0xC0, 0x7F])
        #expect(throws: CodecError.self) { try codec.decode(nonFinite) }
    }

    @Test func deflateBombsThrow() throws {
        let n = 1_000
        let limit = CompositeCodec.inflatedLimit(count: n)
        #expect(limit == 16_064)
        let tiny = try zlibStream([0, 0, 0])
        // A tiny payload claiming the full allowance: impossible for deflate, refused before allocating.
        #expect(throws: CodecError.self) {
            try CompositeCodec(ratio: 1).decode(deflatedPayload(count: n, claimed: limit, stream: tiny))
        }
        // A claim above the cap.
        let zeros = try zlibStream([UInt8](repeating: 0, count: 1 << 20))
        #expect(zeros.count < 2_000)
        #expect(throws: CodecError.self) {
            try CompositeCodec(ratio: 1).decode(deflatedPayload(count: n, claimed: limit + 1, stream: zeros))
        }
        // A stream inflating far beyond what it claims (and beyond the cap) stops at the claim.
        do {
            _ = try CompositeCodec(ratio: 1).decode(deflatedPayload(count: n, claimed: limit, stream: zeros))
            Issue.record("bomb decoded")
        } catch let error as CodecError {
            #expect(error.code == .lengthOverflow)
        }
        // A huge announced count with a tiny payload does not allocate the count.
        #expect(throws: CodecError.self) {
            try CompositeCodec(ratio: 1).decode(
                deflatedPayload(count: CodecHeader.maximumCount, claimed: 1 << 34, stream: tiny))
        }
        #expect(throws: CodecError.self) {
            try CompositeCodec(ratio: 1).decode(
                deflatedPayload(count: CodecHeader.maximumCount, claimed: 4_000, stream: tiny))
        }
    }

    @Test func deflateCodecWrapsAnyCodecLosslessly() throws {
        let x = randomVector(2_000, seed: 16)
        for inner in [IdentityCodec(), TopKCodec(ratio: 0.05)] as [any Codec] {
            let codec = DeflateCodec(inner: inner)
            let bytes = try codec.encode(x)
            #expect(try codec.decode(bytes) == (try inner.decode(try inner.encode(x))))
            for cut in stride(from: 0, to: bytes.count, by: max(1, bytes.count / 200)) {
                #expect(throws: CodecError.self) { try codec.decode(Array(bytes[..<cut])) }
            }
        }
        // A deflated payload whose inner codec disagrees with the outer count.
        let inner = try IdentityCodec().encode([1, 2, 3])
        var w = PayloadWriter()
        CodecHeader(codec: .deflate, count: 4).write(to: &w)
        try ZlibBlock.write(inner, to: &w)
        #expect(throws: CodecError.self) { try DeflateCodec(inner: IdentityCodec()).decode(w.bytes) }
    }
}
