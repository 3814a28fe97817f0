import FedTensor
import Testing

@testable import FedCompress

@Suite struct PowerSGDTests {
    /// A rows × cols matrix of rank `rank` (sum of `rank` random outer products), row-major.
    static func lowRank(rows: Int, cols: Int, rank: Int, seed: UInt64) -> [Float] {
        var rng = SeededRNG(seed: seed, stream: "powersgd-data")
        let u = (0..<(rows * rank)).map { _ in rng.nextNormal() }
        let v = (0..<(cols * rank)).map { _ in rng.nextNormal() }
        return (0..<(rows * cols)).map { cell in
            let i = cell / cols
            let j = cell % cols
            return (0..<rank).map { u[i * rank + $0] * v[j * rank + $0] }.reduce(0, +)
        }
    }

    static func relativeError(_ a: [Float], _ b: [Float]) -> Double {
        let diff = zip(a, b).map { Double($0 - $1) * Double($0 - $1) }.reduce(0, +)
        return (diff / b.map { Double($0) * Double($0) }.reduce(0, +)).squareRoot()
    }

    @Test func rankRMatricesAreReconstructedInOneRound() throws {
        for r in [1, 2, 4] {
            let m = Self.lowRank(rows: 30, cols: 20, rank: r, seed: UInt64(r))
            let codec = PowerSGDCodec(rank: r)
            let context = CodecContext(seed: 1, stream: "layer", shape: [30, 4, 5])
            let bytes = try codec.encode(m, context: context)
            // header · mode · varint 30 · varint 20 · varint r · (30 + 20)·r floats
            #expect(bytes.count == QuantizerTests.headerSize(600) + 4 + 4 * 50 * r)
            let once = try codec.decode(bytes).densified()
            #expect(Self.relativeError(once, m) < 1e-4)
            let twice = try codec.decode(codec.encode(m, context: context)).densified()
            #expect(Self.relativeError(twice, m) < 1e-4)
        }
    }

    @Test func errorDecreasesWithRankAndWarmStartsImproveIt() throws {
        var rng = SeededRNG(seed: 2, stream: "powersgd-full")
        let m = (0..<(40 * 30)).map { _ in rng.nextNormal() }
        let context = CodecContext(seed: 3, stream: "w", shape: [40, 30])
        var errors: [Double] = []
        for r in [1, 2, 4, 8, 16] {
            errors.append(
                Self.relativeError(
                    try PowerSGDCodec(rank: r).decode(PowerSGDCodec(rank: r).encode(m, context: context)).densified(), m
                ))
        }
        for i in 1..<errors.count { #expect(errors[i] < errors[i - 1], "\(errors)") }
        #expect(errors.last! < errors.first!)
        // Repeated rounds on the same stream are power iterations: the rank-2 error does not grow.
        let codec = PowerSGDCodec(rank: 2)
        let first = Self.relativeError(try codec.decode(codec.encode(m, context: context)).densified(), m)
        var last = first
        for _ in 0..<10 {
            last = Self.relativeError(try codec.decode(codec.encode(m, context: context)).densified(), m)
        }
        #expect(last <= first + 1e-6)
        codec.reset()
        let again = Self.relativeError(try codec.decode(codec.encode(m, context: context)).densified(), m)
        #expect(abs(again - first) < 1e-9)
    }

    @Test func fullRankEqualsTheInputAndVectorsAreSentRaw() throws {
        let m = Self.lowRank(rows: 6, cols: 4, rank: 4, seed: 5)
        let out = try PowerSGDCodec(rank: 9).decode(
            PowerSGDCodec(rank: 9).encode(m, context: CodecContext(shape: [6, 4])))
        #expect(Self.relativeError(out.densified(), m) < 1e-5)
        let v: [Float] = [1, -2, .leastNonzeroMagnitude, 4]
        for shape in [[], [4]] {
            let bytes = try PowerSGDCodec(rank: 2).encode(v, context: CodecContext(shape: shape))
            #expect(bytes.count == QuantizerTests.headerSize(4) + 1 + 16)
            #expect(try PowerSGDCodec(rank: 2).decode(bytes) == .dense(v))
        }
        #expect(throws: CodecError.self) { try PowerSGDCodec(rank: 2).encode(v, context: CodecContext(shape: [3, 2])) }
        #expect(throws: CodecError.self) {
            try PowerSGDCodec(rank: 1).encode([1, .nan], context: CodecContext(shape: [1, 2]))
        }
    }

    @Test func zeroMatrixDecodesToZero() throws {
        let m = [Float](repeating: 0, count: 12)
        let out = try PowerSGDCodec(rank: 2).decode(
            PowerSGDCodec(rank: 2).encode(m, context: CodecContext(shape: [3, 4])))
        #expect(out == .dense(m))
    }

    /// Finite but huge inputs overflow in `M Q`, `Mᵀ P` or `P Qᵀ`. Found by `CodecFuzzer`: the
    /// encoder wrote non-finite factors that its own decoder rejects, and kept the non-finite `Q`
    /// as the warm start, so every later payload of that stream was undecodable too. The encoder
    /// now refuses such a tensor and leaves the warm start as it was.
    @Test func overflowingInputsAreRefusedAndDoNotPoisonTheWarmStart() throws {
        let codec = PowerSGDCodec(rank: 2)
        let context = CodecContext(seed: 1, stream: "huge", shape: [8, 8])
        var huge = Self.lowRank(rows: 8, cols: 8, rank: 2, seed: 5)
        huge[0] = .greatestFiniteMagnitude
        huge[9] = -.greatestFiniteMagnitude
        huge[18] = .greatestFiniteMagnitude
        #expect(throws: CodecError.self) { try codec.encode(huge, context: context) }
        let m = Self.lowRank(rows: 8, cols: 8, rank: 2, seed: 3)
        let out = try codec.decode(try codec.encode(m, context: context)).densified()
        #expect(Self.relativeError(out, m) < 1e-4)
        // Large values that stay representable still encode and decode.
        let large = m.map { $0 * 1e36 }
        let back = try codec.decode(try codec.encode(large, context: context)).densified()
        #expect(back.allSatisfy { $0.isFinite })
        #expect(Self.relativeError(back, large) < 1e-3)
    }
}
