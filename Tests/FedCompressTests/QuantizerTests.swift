import FedTensor
import Testing

@testable import FedCompress

@Suite struct QuantizerTests {
    /// Bytes of the common header for `n` elements: magic 3 + version 1 + id 1 + varint(n).
    static func headerSize(_ n: Int) -> Int {
        var w = PayloadWriter()
        CodecHeader(codec: .identity, count: n).write(to: &w)
        return w.bytes.count
    }

    static func dense(_ codec: any Codec, _ v: [Float], seed: UInt64 = 0, stream: String = "t") throws -> [Float] {
        try codec.decode(try codec.encode(v, context: CodecContext(seed: seed, stream: stream))).densified()
    }

    /// Checks `E[decoded] = v` elementwise over 2,000 seeds: the sample mean of an element with
    /// per-draw variance σ² must lie within 5σ/√2000 (+1e-6 for rounding) of the input.
    static func expectUnbiased(_ codec: any Codec, _ v: [Float], variance: (Int) -> Double) throws {
        let draws = 2_000
        var sum = [Double](repeating: 0, count: v.count)
        for seed in 0..<draws {
            let out = try dense(codec, v, seed: UInt64(seed))
            for i in v.indices { sum[i] += Double(out[i]) }
        }
        for i in v.indices {
            let mean = sum[i] / Double(draws)
            let tolerance = 5 * (variance(i) / Double(draws)).squareRoot() + 1e-6 * max(1, Double(abs(v[i])))
            #expect(abs(mean - Double(v[i])) <= tolerance, "element \(i): mean \(mean) vs \(v[i]) ± \(tolerance)")
        }
    }

    static let sample: [Float] = [0.3, -1.2, 0.05, 2.0, -0.7, 0, 1e-3, -0.25]

    @Test(arguments: [false, true]) func qsgdIsUnbiased(elias: Bool) throws {
        let s = 2
        let v = Self.sample
        let norm = Double(v.map { $0 * $0 }.reduce(0, +)).squareRoot()
        try Self.expectUnbiased(QSGDCodec(levels: s, bucketSize: 64, elias: elias), v) { i in
            let r = Double(abs(v[i])) / norm * Double(s)
            let p = r - r.rounded(.down)
            return (norm / Double(s)) * (norm / Double(s)) * p * (1 - p)
        }
    }

    @Test func ternGradIsUnbiased() throws {
        let v = Self.sample
        let s = Double(v.map(abs).max()!)
        try Self.expectUnbiased(TernGradCodec(), v) { i in s * Double(abs(v[i])) - Double(v[i] * v[i]) }
    }

    @Test func naturalCompressionIsUnbiased() throws {
        let v: [Float] = Self.sample + [0x1.4p-133, -0x1.8p-128, 1.5, -96]
        try Self.expectUnbiased(NaturalCompressionCodec(), v) { i in
            let a = Double(abs(v[i]))
            guard a > 0 else { return 0 }
            let low = a < 0x1p-126 ? 0 : Double(sign: .plus, exponent: a.exponent, significand: 1)
            let high = a < 0x1p-126 ? 0x1p-126 : 2 * low
            return (high - a) * (a - low)
        }
    }

    @Test func eliasAndFixedWidthQSGDDecodeToTheSameValues() throws {
        var rng = SeededRNG(seed: 3, stream: "qsgd-data")
        let v = (0..<1_000).map { _ in rng.nextNormal() }
        for s in [1, 3, 16, 255] {
            let fixed = try Self.dense(QSGDCodec(levels: s, bucketSize: 100, elias: false), v, seed: 9)
            let elias = try Self.dense(QSGDCodec(levels: s, bucketSize: 100, elias: true), v, seed: 9)
            #expect(fixed == elias)
        }
    }

    @Test func qsgdWithManyLevelsIsWithinNormOverSOfTheInput() throws {
        var rng = SeededRNG(seed: 4, stream: "qsgd-data")
        let v = (0..<300).map { _ in rng.nextNormal() }
        let s = 1 << 16
        let out = try Self.dense(QSGDCodec(levels: s, bucketSize: 300), v)
        let norm = v.map { $0 * $0 }.reduce(0, +).squareRoot()
        for i in v.indices { #expect(abs(out[i] - v[i]) <= norm / Float(s) * 1.001) }
        let sign = v.indices.allSatisfy { out[$0] == 0 || (out[$0] < 0) == (v[$0] < 0) }
        #expect(sign)
    }

    @Test func payloadSizesMatchTheirFormulas() throws {
        let n = 1_001
        var rng = SeededRNG(seed: 5, stream: "sizes")
        let v = (0..<n).map { _ in rng.nextNormal() }
        let h = Self.headerSize(n)
        // s = 5 → 3 level bits + sign; bucket 100 → 11 norms; varint(5) 1 + varint(100) 1 + flag 1.
        #expect(try QSGDCodec(levels: 5, bucketSize: 100).encode(v).count == h + 3 + 4 * 11 + (n * 4 + 7) / 8)
        #expect(try TernGradCodec().encode(v).count == h + 1 + 4 + (2 * n + 7) / 8)
        #expect(try TernGradCodec(bucketSize: 100).encode(v).count == h + 1 + 4 * 11 + (2 * n + 7) / 8)
        #expect(try SignSGDCodec().encode(v).count == h + 1 + (n + 7) / 8)
        #expect(try SignSGDCodec(scaled: true).encode(v).count == h + 1 + 4 + (n + 7) / 8)
        #expect(try OneBitCodec().encode(v).count == h + 8 + (n + 7) / 8)
        #expect(try NaturalCompressionCodec().encode(v).count == h + n + (n + 7) / 8)
        let h0 = Self.headerSize(0)
        // varint(5) 1 + varint(512) 2 + flag 1, no norms, no levels
        #expect(try QSGDCodec(levels: 5).encode([Float]()).count == h0 + 4)
        #expect(try TernGradCodec().encode([Float]()).count == h0 + 1)
        #expect(try NaturalCompressionCodec().encode([Float]()).count == h0)
    }

    @Test func signSGDAndOneBitDecodeToHandComputedValues() throws {
        let v: [Float] = [1.5, -0.5, 0, -2, 3]
        #expect(try Self.dense(SignSGDCodec(), v) == [1, -1, 1, -1, 1])
        // ‖v‖₁ / n = 7 / 5
        #expect(try Self.dense(SignSGDCodec(scaled: true), v) == [1.4, -1.4, 1.4, -1.4, 1.4])
        // non-negative mean (1.5 + 0 + 3) / 3 = 1.5, negative mean (−0.5 − 2) / 2 = −1.25
        #expect(try Self.dense(OneBitCodec(), v) == [1.5, -1.25, 1.5, -1.25, 1.5])
        #expect(try Self.dense(OneBitCodec(), [2, 4]) == [3, 3])
        #expect(try Self.dense(SignSGDCodec(scaled: true), []) == [])
    }

    @Test func naturalCompressionSendsSignedPowersOfTwoAroundTheInput() throws {
        var rng = SeededRNG(seed: 6, stream: "natural-data")
        let v: [Float] =
            (0..<2_000).map { i -> Float in i % 97 == 0 ? 0 : rng.nextNormal() * 10 } + [
                0x1p-140, -0x1.cp-127, 0x1p127 * 1.5,
            ]
        let out = try Self.dense(NaturalCompressionCodec(), v, seed: 1)
        for (x, y) in zip(v, out) {
            if x == 0 {
                #expect(y == 0)
                continue
            }
            #expect(y == 0 || y.significandBitPattern == 0 && y.isNormal, "\(y) is not a power of two")
            #expect(y == 0 || (y < 0) == (x < 0))
            if x.isNormal && abs(x) < 0x1p127 {
                #expect(abs(y) == x.magnitude.binade || abs(y) == 2 * x.magnitude.binade)
            }
        }
        #expect(out.last == 0x1p127)
    }

    @Test func stcKeepsTheTopKAsSignedMeanMagnitude() throws {
        let v: [Float] = [0.5, -3, 1, 0, 2, -2]
        let codec = STCCodec(ratio: 0.5)
        let bytes = try codec.encode(v)
        // header · varint k=3 · μ · gaps 1, 2, 0 · one sign byte
        #expect(bytes.count == Self.headerSize(6) + 1 + 4 + 3 + 1)
        let mu: Float = 7.0 / 3.0
        #expect(try codec.decode(bytes) == .sparse(count: 6, indices: [1, 4, 5], values: [-mu, mu, -mu]))
        // ties go to the lower index
        #expect(
            try STCCodec(ratio: 0.5).decode(STCCodec(ratio: 0.5).encode([1, -1, 1, 0.5]))
                == .sparse(count: 4, indices: [0, 1], values: [1, -1]))
        #expect(
            try STCCodec(ratio: 0.1).decode(STCCodec(ratio: 0.1).encode([]))
                == .sparse(count: 0, indices: [], values: []))
    }

    @Test func stcSelectsExactlyTheLargestMagnitudes() throws {
        var rng = SeededRNG(seed: 7, stream: "stc-data")
        let v = (0..<10_000).map { i in i % 13 == 0 ? Float(0.25) : rng.nextNormal() }
        for ratio in [0.001, 0.05, 0.3, 1.0] {
            let codec = STCCodec(ratio: ratio)
            guard case .sparse(_, let idx, let vals) = try codec.decode(codec.encode(v)) else {
                Issue.record("not sparse")
                return
            }
            let k = codec.keptCount(v.count)
            let expected = v.indices.sorted { (abs(v[$0]), -$0) > (abs(v[$1]), -$1) }.prefix(k).sorted()
            #expect(idx.map(Int.init) == expected)
            let mu = expected.map { Double(abs(v[$0])) }.reduce(0, +) / Double(k)
            #expect(vals.allSatisfy { abs(Double(abs($0)) - mu) <= 1e-6 * mu })
        }
    }

    @Test func encodingsAreReproducibleFromSeedAndStream() throws {
        let v = Self.sample
        for codec in [QSGDCodec(levels: 3), TernGradCodec(), NaturalCompressionCodec()] as [any Codec] {
            let a = try codec.encode(v, context: CodecContext(seed: 11, stream: "c/1"))
            #expect(try codec.encode(v, context: CodecContext(seed: 11, stream: "c/1")) == a)
            let others = try (0..<8).map { try codec.encode(v, context: CodecContext(seed: 11, stream: "c/\($0 + 2)")) }
            #expect(others.contains { $0 != a })
        }
    }

    @Test func bitStreamsRoundTripFieldsAndEliasCodes() throws {
        var w = BitWriter()
        let fields: [(UInt64, Int)] = [
            (1, 1), (0, 3), (0x1F, 5), (0xAB_CDEF_0123, 40), (0, 0), (0x00FF_FFFF_FFFF_FFFF, 56),
        ]
        for (v, b) in fields { w.write(v, bits: b) }
        let gammas: [UInt64] = [1, 2, 3, 4, 7, 8, 1_000, (1 << 32) - 1]
        for g in gammas { w.writeEliasGamma(g) }
        let bytes = w.finish()
        let (read, decoded, left, overrun) = try bytes.withUnsafeBufferPointer {
            (buf) throws -> ([UInt64], [UInt64], Int, Bool) in
            var r = BitReader(buf, byteOffset: 0, byteCount: buf.count)
            var read: [UInt64] = []
            var decoded: [UInt64] = []
            for (_, b) in fields { read.append(try r.read(bits: b)) }
            for _ in gammas { decoded.append(try r.readEliasGamma(maxBits: 32)) }
            let left = r.remainingBits
            return (read, decoded, left, (try? r.read(bits: 8)) == nil)
        }
        #expect(read == fields.map(\.0))
        #expect(decoded == gammas)
        #expect(left < 8)
        #expect(overrun)
    }

    @Test func catalogBuildsEveryListedCodec() throws {
        for entry in Codecs.catalog {
            let codec = try Codecs.make(
                name: entry.name, parameters: entry.name == "threshold" ? ["threshold": 0.5] : [:])
            #expect(codec.name.hasPrefix(entry.name))
        }
        #expect(
            try Codecs.make(name: "qsgd", parameters: ["s": 4, "elias": 1]).name == "qsgd(s=4,bucket=512,elias=true)")
        #expect(throws: CodecError.self) { try Codecs.make(name: "qsgd", parameters: ["s": 0]) }
        #expect(throws: CodecError.self) { try Codecs.make(name: "qsgd", parameters: ["s": 2.5]) }
        #expect(throws: CodecError.self) { try Codecs.make(name: "stc", parameters: ["k": 1]) }
        #expect(throws: CodecError.self) { try Codecs.make(name: "nope") }
    }
}
