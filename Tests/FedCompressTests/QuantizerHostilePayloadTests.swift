import FedTensor
import Testing

@testable import FedCompress

@Suite struct QuantizerHostilePayloadTests {
    static let codecs: [any Codec] = [
        QSGDCodec(levels: 7, bucketSize: 8), QSGDCodec(levels: 300, bucketSize: 16, elias: true), TernGradCodec(),
        TernGradCodec(bucketSize: 5), SignSGDCodec(), SignSGDCodec(scaled: true), OneBitCodec(),
        NaturalCompressionCodec(), STCCodec(ratio: 0.2), PowerSGDCodec(rank: 2),
    ]

    static func valid(_ codec: any Codec) throws -> [UInt8] {
        var rng = SeededRNG(seed: 1, stream: "hostile")
        let v = (0..<40).map { _ in rng.nextNormal() }
        return try codec.encode(v, context: CodecContext(seed: 2, stream: "h", shape: [8, 5]))
    }

    @Test func everyTruncationThrows() throws {
        for codec in Self.codecs {
            let bytes = try Self.valid(codec)
            _ = try codec.decode(bytes)
            for cut in 0..<bytes.count {
                #expect(throws: CodecError.self, "\(codec.name) cut at \(cut)") {
                    try codec.decode(Array(bytes.prefix(cut)))
                }
            }
            #expect(throws: CodecError.self) { try codec.decode(bytes + [0]) }
        }
    }

    @Test func wrongCodecIdThrows() throws {
        for codec in Self.codecs {
            var bytes = try Self.valid(codec)
            bytes[4] = codec.id == .identity ? CodecID.topK.rawValue : CodecID.identity.rawValue
            #expect { try codec.decode(bytes) } throws: { ($0 as? CodecError)?.code == .wrongCodec }
        }
    }

    @Test(arguments: [Float.nan, .infinity, -.infinity])
    func nonFiniteScalesThrow(bad: Float) throws {
        let h = QuantizerTests.headerSize(40)
        // (codec, offset of a float scale inside its payload)
        let cases: [(any Codec, Int)] = [
            (QSGDCodec(levels: 7, bucketSize: 8), h + 1 + 1 + 1),
            (TernGradCodec(), h + 1),
            (SignSGDCodec(scaled: true), h + 1),
            (OneBitCodec(), h),
            (OneBitCodec(), h + 4),
            (STCCodec(ratio: 0.2), h + 1),
            (PowerSGDCodec(rank: 2), h + 4),
        ]
        for (codec, offset) in cases {
            var bytes = try Self.valid(codec)
            withUnsafeBytes(of: bad.bitPattern.littleEndian) { for i in 0..<4 { bytes[offset + i] = $0[i] } }
            #expect(throws: CodecError.self, "\(codec.name)") { try codec.decode(bytes) }
        }
        var negative = try Self.valid(TernGradCodec())
        withUnsafeBytes(of: Float(-1).bitPattern.littleEndian) { for i in 0..<4 { negative[h + 1 + i] = $0[i] } }
        #expect(throws: CodecError.self) { try TernGradCodec().decode(negative) }
        // exponent byte 255 would decode to Inf / NaN
        var natural = try Self.valid(NaturalCompressionCodec())
        natural[h + 3] = 0xFF
        #expect(throws: CodecError.self) { try NaturalCompressionCodec().decode(natural) }
        #expect(throws: CodecError.self) { try QSGDCodec(levels: 3).encode([1, .infinity]) }
        #expect(throws: CodecError.self) { try NaturalCompressionCodec().encode([.nan]) }
        #expect(throws: CodecError.self) { try STCCodec(ratio: 0.5).encode([.nan, 1]) }
    }

    @Test func hostileCountsAndIndicesThrow() throws {
        // STC: an index gap that runs past the end.
        var w = PayloadWriter()
        CodecHeader(codec: .stc, count: 4).write(to: &w)
        w.writeVarint(2)
        w.write(Float(1))
        w.writeVarint(3)
        w.writeVarint(0)
        w.write(UInt8(0))
        #expect { try STCCodec(ratio: 0.5).decode(w.bytes) } throws: { ($0 as? CodecError)?.code == .indexOutOfRange }
        // TernGrad: code 11.
        var t = try TernGradCodec().encode([1, 1, 1, 1])
        t[t.count - 1] = 0xFF
        #expect(throws: CodecError.self) { try TernGradCodec().decode(t) }
        // QSGD: a level above s.
        var q = try QSGDCodec(levels: 5, bucketSize: 4).encode([0, 0, 0, 1])
        q[q.count - 2] = 0xFF
        #expect(throws: CodecError.self) { try QSGDCodec(levels: 5, bucketSize: 4).decode(q) }
        // Announcing 2³¹ − 1 elements in a short payload is refused before allocating; STC output is
        // sparse, so a huge count with few kept indices is a valid payload and allocates only k.
        for codec in Self.codecs {
            var bytes = try Self.valid(codec)
            bytes.replaceSubrange(5..<6, with: [0xFF, 0xFF, 0xFF, 0xFF, 0x07])
            if codec is STCCodec {
                #expect(try codec.decode(bytes).count == Int(Int32.max))
            } else {
                #expect(throws: CodecError.self, "\(codec.name)") { try codec.decode(bytes) }
            }
        }
    }

    /// ≈ 2,000 seeded mutations per codec (byte flips, overwrites, cuts, insertions): decode must
    /// return or throw, never trap, and what it returns must be finite with the announced count.
    @Test func mutatedPayloadsReturnOrThrow() throws {
        var rng = SeededRNG(seed: 42, stream: "fuzz")
        for codec in Self.codecs {
            let original = try Self.valid(codec)
            var accepted = 0
            for _ in 0..<2_000 {
                var bytes = original
                for _ in 0..<(1 + rng.nextInt(below: 3)) {
                    let at = rng.nextInt(below: bytes.count)
                    switch rng.nextInt(below: 5) {
                    case 0: bytes[at] ^= UInt8(1) << UInt8(rng.nextInt(below: 8))
                    case 1: bytes[at] = UInt8(truncatingIfNeeded: rng.next())
                    case 2: bytes[at] = [0x00, 0x7F, 0x80, 0xFF][rng.nextInt(below: 4)]
                    case 3: bytes.removeSubrange(at..<bytes.count)
                    default: bytes.insert(UInt8(truncatingIfNeeded: rng.next()), at: at)
                    }
                    if bytes.isEmpty { break }
                }
                guard let out = try? codec.decode(bytes) else { continue }
                accepted += 1
                let values: [Float]
                switch out {
                case .dense(let v):
                    values = v
                case .sparse(let n, let idx, let v):
                    values = v
                    #expect(idx.count == v.count)
                    #expect(zip(idx, idx.dropFirst()).allSatisfy { $0 < $1 } && idx.allSatisfy { Int($0) < n })
                }
                let finite = values.allSatisfy { $0.isFinite }
                #expect(finite, "\(codec.name) decoded a non-finite value")
            }
            #expect(accepted < 2_000)
        }
    }

    /// A norm at the top of the float range with s = 25 and level 25: `norm / s · s` rounds past
    /// `Float.greatestFiniteMagnitude`, and QSGD decoded +∞ (also for its own encoding of a vector
    /// holding that value). Found by `CodecFuzzer`. The level is now scaled without overflowing.
    @Test func qsgdTopLevelOfTheLargestNormStaysFinite() throws {
        let top = Float.greatestFiniteMagnitude
        #expect(!(top / 25 * 25).isFinite)  // the rounding that used to leak out
        for elias in [false, true] {
            var w = PayloadWriter()
            CodecHeader(codec: .qsgd, count: 2).write(to: &w)
            w.writeVarint(25)
            w.writeVarint(1)
            w.write(UInt8(elias ? 1 : 0))
            w.write(top)
            w.write(top)
            var bits = BitWriter()
            for negative in [false, true] {
                if elias { bits.writeEliasGamma(26) } else { bits.write(25, bits: 5) }
                bits.write(bit: negative)
            }
            w.write(bytes: bits.finish())
            let out = try QSGDCodec(levels: 25).decode(w.bytes).densified()
            #expect(out == [top, -top], "elias \(elias)")
        }
        let codec = QSGDCodec(levels: 25, bucketSize: 1)
        let decoded = try codec.decode(try codec.encode([top, -top, 1])).densified()
        #expect(decoded.allSatisfy { $0.isFinite } && decoded[0] == top && decoded[1] == -top)
    }
}
