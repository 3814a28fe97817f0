import FedTensor
import Testing

@testable import FedCompress

/// Indices (ascending) of the first `k` elements in the order |x| descending, index ascending,
/// by a full sort: the reference Top-K selection must match.
private func referenceTopK(_ x: [Float], k: Int) -> [UInt32] {
    let order = x.indices.sorted { a, b in
        abs(x[a]) != abs(x[b]) ? abs(x[a]) > abs(x[b]) : a < b
    }
    return order.prefix(k).map { UInt32($0) }.sorted()
}

private func sparse(_ u: DecodedUpdate) -> (count: Int, indices: [UInt32], values: [Float])? {
    guard case .sparse(let n, let i, let v) = u else { return nil }
    return (n, i, v)
}

/// Header length for `n` elements: magic 3 + version 1 + id 1 + varint(n).
private func headerLength(_ n: Int) -> Int { 5 + SparseIndexCoding.varintLength(UInt64(n)) }

@Suite struct SparseCodecTests {
    @Test(arguments: [1, 7, 100, 1_000, 70_000, 200_000])
    func exactTopKKeepsTheKLargestMagnitudes(n: Int) throws {
        var rng = SeededRNG(seed: UInt64(n))
        let x = (0..<n).map { _ in rng.nextNormal() }
        for k in Set([0, 1, n / 100, n / 10, n / 2, n - 1, n, n + 5]) where k >= 0 {
            let codec = TopKCodec(k: k)
            let bytes = try codec.encode(x, context: CodecContext(seed: 9, stream: "t"))
            guard let s = sparse(try codec.decode(bytes)) else {
                Issue.record("not sparse")
                return
            }
            let expected = referenceTopK(x, k: min(k, n))
            #expect(s.count == n)
            #expect(s.indices == expected, "n=\(n) k=\(k)")
            #expect(s.values == expected.map { x[Int($0)] })
        }
    }

    @Test(arguments: [10, 1_000, 100_000])
    func exactTopKBreaksTiesTowardTheLowerIndex(n: Int) throws {
        var rng = SeededRNG(seed: 5)
        let x = (0..<n).map { _ in Float(rng.nextInt(below: 5) - 2) }  // values in {-2, -1, 0, 1, 2}
        for k in [1, n / 7, n / 5, n / 3, n / 2, 4 * n / 5] where k > 0 {
            guard let s = sparse(try TopKCodec(k: k).decode(try TopKCodec(k: k).encode(x))) else {
                return
            }
            #expect(s.indices == referenceTopK(x, k: k), "n=\(n) k=\(k)")
        }
    }

    @Test func ratioBudgetRoundsToNearestAndClampsToOne() {
        #expect(TopKCodec(ratio: 0.01).keptCount(of: 1_663_370) == 16_634)
        #expect(TopKCodec(ratio: 0.01).keptCount(of: 10) == 1)
        #expect(TopKCodec(ratio: 1).keptCount(of: 10) == 10)
        #expect(TopKCodec(ratio: 0.5).keptCount(of: 0) == 0)
        #expect(throws: CodecError.self) { try TopKCodec(ratio: 0).encode([1]) }
        #expect(throws: CodecError.self) { try TopKCodec(ratio: 1.5).encode([1]) }
        #expect(throws: CodecError.self) { try TopKCodec(k: 1).encode([.nan, 1]) }
    }

    /// Guarantee: k ≤ kept ≤ ⌊1.25k⌋ and min kept |x| ≥ max dropped |x|.
    @Test(arguments: [(100_000, 0.01), (300_000, 0.001), (50_000, 0.1), (20_000, 0.01), (5_000, 0.3)])
    func approximateTopKKeepsBetweenKAnd125PercentOfTheLargest(n: Int, ratio: Double) throws {
        for (seed, ties) in [(UInt64(1), false), (2, false), (3, true)] {
            var rng = SeededRNG(seed: seed)
            let x = (0..<n).map { _ in ties ? Float(rng.nextInt(below: 5) - 2) : rng.nextNormal() }
            let codec = TopKCodec(ratio: ratio, approximate: true)
            let k = codec.keptCount(of: n)
            guard let s = sparse(try codec.decode(try codec.encode(x, context: CodecContext(seed: seed))))
            else {
                return
            }
            #expect(
                s.indices.count >= k && s.indices.count <= k + k / 4, "kept \(s.indices.count), k \(k)")
            var kept = [Bool](repeating: false, count: n)
            for i in s.indices { kept[Int(i)] = true }
            let minKept = s.indices.map { abs(x[Int($0)]) }.min() ?? .infinity
            let maxDropped = (0..<n).filter { !kept[$0] }.map { abs(x[$0]) }.max() ?? 0
            #expect(minKept >= maxDropped)
            #expect(zip(s.indices, s.indices.dropFirst()).allSatisfy { $0 < $1 })
        }
    }

    @Test func fp16ValuesAreRoundedAndHalveTheValueBytes() throws {
        let x: [Float] = [0, 3, 0, -0.1, 0, 0, 7]
        let a = try TopKCodec(k: 3).encode(x)
        let b = try TopKCodec(k: 3, valueFormat: .fp16).encode(x)
        #expect(a.count - b.count == 3 * 2)
        guard let s = sparse(try TopKCodec(k: 3).decode(b)) else { return }
        #expect(s.indices == [1, 3, 6])
        #expect(s.values == [3, HalfPrecision.float(fp16Bits: HalfPrecision.fp16Bits(-0.1)), 7])
        #expect(throws: CodecError.self) { try TopKCodec(k: 1, valueFormat: .fp16).encode([1e6]) }
    }

    @Test func thresholdKeepsMagnitudesAtOrAboveIt() throws {
        let x: [Float] = [0.5, -0.49, -2, 0, 0.5, 1e-9, -0.5]
        let codec = ThresholdCodec(threshold: 0.5)
        guard let s = sparse(try codec.decode(try codec.encode(x))) else { return }
        #expect(s.indices == [0, 2, 4, 6])
        #expect(s.values == [0.5, -2, 0.5, -0.5])
        guard let none = sparse(try codec.decode(try codec.encode([0.1, 0.2]))) else { return }
        #expect(none.indices.isEmpty && none.count == 2)
        #expect(throws: CodecError.self) { try ThresholdCodec(threshold: -1).encode([1]) }
        #expect(throws: CodecError.self) { try ThresholdCodec(threshold: .nan).encode([1]) }
        #expect(throws: CodecError.self) { try ThresholdCodec(threshold: 1).encode([.infinity]) }
    }

    // MARK: - Index coding

    /// Encodes `kept` (indices of a 0/1 vector of length n) through the threshold codec.
    private func thresholdPayload(n: Int, kept: [Int]) throws -> [UInt8] {
        var x = [Float](repeating: 0, count: n)
        for i in kept { x[i] = 1 }
        return try ThresholdCodec(threshold: 0.5).encode(x)
    }

    /// Offset of the index-coding method byte.
    private func methodOffset(n: Int, k: Int) -> Int {
        headerLength(n) + 1 + SparseIndexCoding.varintLength(UInt64(k))
    }

    @Test func varintCodingWinsForClusteredIndicesAndHasTheFormulaSize() throws {
        // Two runs of 50 far apart: gaps 0 ×49, 99 900, 0 ×49 → 99 + 3 varint bytes; Rice (b = 9)
        // would take 151 bytes, the bitmap 12 500.
        let n = 100_000
        let kept = Array(0..<50) + Array(99_950..<100_000)
        let bytes = try thresholdPayload(n: n, kept: kept)
        #expect(bytes[methodOffset(n: n, k: 100)] == SparseIndexCoding.Method.varint.rawValue)
        #expect(bytes.count == headerLength(n) + 1 + 1 + 1 + 102 + 4 * 100)
        guard let s = sparse(try ThresholdCodec(threshold: 0).decode(bytes)) else { return }
        #expect(s.indices == kept.map { UInt32($0) })
    }

    @Test func bitmapCodingWinsWhenDenseAndHasTheFormulaSize() throws {
        let n = 1_000
        let kept = Array(stride(from: 0, to: n, by: 2))  // k = 500: bitmap 125 B, varint 500 B, Rice 126 B
        let bytes = try thresholdPayload(n: n, kept: kept)
        #expect(bytes[methodOffset(n: n, k: 500)] == SparseIndexCoding.Method.bitmap.rawValue)
        #expect(bytes.count == headerLength(n) + 1 + 2 + 1 + 125 + 4 * 500)
        guard let s = sparse(try ThresholdCodec(threshold: 0).decode(bytes)) else { return }
        #expect(s.indices == kept.map { UInt32($0) })
    }

    @Test func riceCodingWinsForRegularGapsAndHasTheFormulaSize() throws {
        // Every 10th of 1 000: gaps 0, 9 ×99; mean 8.91 → b = 3; 4 + 99·5 = 499 bits → 63 B + 1
        // parameter byte, against 100 B varint and 125 B bitmap.
        let n = 1_000
        let kept = Array(stride(from: 0, to: n, by: 10))
        let bytes = try thresholdPayload(n: n, kept: kept)
        #expect(bytes[methodOffset(n: n, k: 100)] == SparseIndexCoding.Method.rice.rawValue)
        #expect(bytes[methodOffset(n: n, k: 100) + 1] == 3)
        #expect(bytes.count == headerLength(n) + 1 + 1 + 1 + 64 + 4 * 100)
        guard let s = sparse(try ThresholdCodec(threshold: 0).decode(bytes)) else { return }
        #expect(s.indices == kept.map { UInt32($0) })
    }

    @Test func everyIndexCodingRoundTripsAtItsEdges() throws {
        var rng = SeededRNG(seed: 21)
        var sets: [(Int, [UInt32])] = [
            (0, []), (1, []), (1, [0]), (9, [8]), (9, Array(0..<9)), (17, [0, 16]),
        ]
        for n in [13, 64, 1_000, 70_001] {
            for density in [0.001, 0.05, 0.5, 0.97] {
                sets.append(
                    (n, (0..<n).filter { _ in Double(rng.nextUniform()) < density }.map { UInt32($0) }))
            }
        }
        sets.append((1 << 20, [0, 5, 1 << 19, (1 << 20) - 1]))  // gaps far beyond 2^b
        for (n, indices) in sets {
            for method in SparseIndexCoding.Method.allCases {
                var w = PayloadWriter()
                indices.withUnsafeBufferPointer {
                    _ = SparseIndexCoding.write($0, count: n, to: &w, forced: method)
                }
                var r = PayloadReader(w.bytes)
                #expect(try SparseIndexCoding.read(from: &r, kept: indices.count, count: n) == indices)
                try r.finish()
            }
        }
    }

    // MARK: - Random-K

    @Test func randomKDecodeRedrawsTheEncodersIndicesWithTheFormulaSize() throws {
        var rng = SeededRNG(seed: 8)
        for (n, ratio) in [(10_000, 0.01), (1_000, 0.3), (50, 1.0), (1, 0.5)] {
            let x = (0..<n).map { _ in rng.nextNormal() }
            let codec = RandomKCodec(ratio: ratio)
            let k = SparsePayload.keptCount(ratio: ratio, of: n)
            let bytes = try codec.encode(x, context: CodecContext(seed: 4, stream: "c/1"))
            #expect(
                bytes.count == headerLength(n) + SparseIndexCoding.varintLength(UInt64(k)) + 8 + 4 * k)
            guard let s = sparse(try codec.decode(bytes)) else { return }
            var r = PayloadReader(bytes)
            _ = try CodecHeader.read(from: &r)
            _ = try r.readVarint()
            let seed = try r.readUInt64()
            #expect(s.indices == RandomKCodec.indices(count: n, kept: k, seed: seed))
            #expect(s.indices.count == k && Set(s.indices).count == k)
            #expect(
                zip(s.indices, s.indices.dropFirst()).allSatisfy { $0 < $1 } && (s.indices.last ?? 0) < n)
            #expect(s.values == s.indices.map { x[Int($0)] })
        }
        let other = try RandomKCodec(ratio: 0.01).encode(
            [Float](repeating: 1, count: 10_000),
            context: CodecContext(seed: 5, stream: "c/1"))
        let first = try RandomKCodec(ratio: 0.01).encode(
            [Float](repeating: 1, count: 10_000),
            context: CodecContext(seed: 4, stream: "c/1"))
        let otherIndices = sparse(try RandomKCodec(ratio: 0.01).decode(other))?.indices
        let firstIndices = sparse(try RandomKCodec(ratio: 0.01).decode(first))?.indices
        #expect(otherIndices != nil && otherIndices != firstIndices)
    }

    /// Each element is kept with probability k/n = 1/4 and scaled by 4, so over 2 000 seeds the
    /// mean has standard deviation |x|·√(3/2000) ≈ 0.039|x|; we allow 5 of them. The biased
    /// variant must instead average to x/4.
    @Test func unbiasedRandomKAveragesToTheInput() throws {
        var rng = SeededRNG(seed: 17)
        let x = (0..<20).map { _ in rng.nextUniform(-1, 1) }
        for unbiased in [true, false] {
            var sum = [Double](repeating: 0, count: x.count)
            for seed in 0..<2_000 {
                let codec = RandomKCodec(ratio: 0.25, unbiased: unbiased)
                let out = try codec.decode(try codec.encode(x, context: CodecContext(seed: UInt64(seed))))
                    .densified()
                for i in x.indices { sum[i] += Double(out[i]) }
            }
            for i in x.indices {
                let mean = sum[i] / 2_000
                let target = Double(x[i]) * (unbiased ? 1 : 0.25)
                let tolerance =
                    5 * Double(abs(x[i]))
                    * (unbiased ? (3.0 / 2_000).squareRoot() : 0.25 * (3.0 / 2_000).squareRoot() * 2)
                #expect(
                    abs(mean - target) <= tolerance + 1e-6, "element \(i): mean \(mean), target \(target)")
            }
        }
    }

    // MARK: - Hostile payloads

    private static let decoders: [any Codec] = [
        TopKCodec(k: 1), ThresholdCodec(threshold: 0), RandomKCodec(ratio: 0.5), FP16Codec(),
        BF16Codec(),
    ]

    private func validPayloads() throws -> [[UInt8]] {
        var rng = SeededRNG(seed: 99)
        let x = (0..<300).map { _ in rng.nextNormal() }
        return [
            try thresholdPayload(n: 1_000, kept: Array(0..<3) + [900]),  // varint
            try thresholdPayload(n: 40, kept: Array(stride(from: 0, to: 40, by: 2))),  // bitmap
            try thresholdPayload(n: 1_000, kept: Array(stride(from: 3, to: 1_000, by: 10))),  // rice
            try TopKCodec(k: 30, valueFormat: .fp16).encode(x),
            try RandomKCodec(ratio: 0.1).encode(x),
            try FP16Codec().encode(Array(x.prefix(20))),
            try BF16Codec().encode(Array(x.prefix(20))),
        ]
    }

    private func decoder(for payload: [UInt8]) -> any Codec {
        switch CodecID(rawValue: payload[4]) {
        case .topK: TopKCodec(k: 1)
        case .threshold: ThresholdCodec(threshold: 0)
        case .randomK: RandomKCodec(ratio: 1)
        case .fp16: FP16Codec()
        default: BF16Codec()
        }
    }

    @Test func everyTruncationAndAnyTrailingByteThrows() throws {
        for payload in try validPayloads() {
            let codec = decoder(for: payload)
            _ = try codec.decode(payload)
            for cut in 0..<payload.count {
                #expect(throws: CodecError.self) { try codec.decode(Array(payload.prefix(cut))) }
            }
            #expect(throws: CodecError.self) { try codec.decode(payload + [0]) }
        }
    }

    /// A sparse payload body after the header: format, k, index block bytes, values.
    private func handMade(
        n: Int, k: Int, method: UInt8, index: [UInt8], values: [Float], format: UInt8 = 0
    ) -> [UInt8] {
        var w = PayloadWriter()
        CodecHeader(codec: .topK, count: n).write(to: &w)
        w.write(format)
        w.writeVarint(UInt64(k))
        w.write(method)
        w.write(bytes: index)
        for v in values { w.write(v) }
        return w.bytes
    }

    @Test func malformedSparsePayloadsThrowTheRightError() throws {
        func code(_ payload: [UInt8]) -> CodecError.Code? {
            do {
                _ = try TopKCodec(k: 1).decode(payload)
                return nil
            } catch let e as CodecError {
                return e.code
            } catch {
                return nil
            }
        }
        // The well-formed baseline decodes.
        #expect(code(handMade(n: 10, k: 2, method: 0, index: [1, 3], values: [1, 2])) == nil)
        // Gap leaves the range: index 1 + 1 + 8 = 10 ≥ n.
        #expect(
            code(handMade(n: 10, k: 2, method: 0, index: [1, 8], values: [1, 2])) == .indexOutOfRange)
        #expect(code(handMade(n: 10, k: 1, method: 0, index: [10], values: [1])) == .indexOutOfRange)
        // k > n.
        #expect(
            code(handMade(n: 2, k: 3, method: 0, index: [0, 0, 0], values: [1, 2, 3])) == .invalidHeader)
        // Non-finite values.
        #expect(code(handMade(n: 10, k: 1, method: 0, index: [0], values: [.nan])) == .nonFinite)
        #expect(code(handMade(n: 10, k: 1, method: 0, index: [0], values: [-.infinity])) == .nonFinite)
        var fp16Inf = handMade(n: 10, k: 1, method: 0, index: [0], values: [], format: 1)
        fp16Inf += [0x00, 0x7C]
        #expect(code(fp16Inf) == .nonFinite)
        // Unknown format / method, Rice parameter out of range, non-zero Rice padding.
        #expect(
            code(handMade(n: 10, k: 1, method: 0, index: [0], values: [1], format: 7)) == .invalidHeader)
        #expect(code(handMade(n: 10, k: 1, method: 3, index: [0], values: [1])) == .invalidHeader)
        #expect(code(handMade(n: 10, k: 1, method: 2, index: [31, 0], values: [1])) == .invalidHeader)
        #expect(
            code(handMade(n: 10, k: 1, method: 2, index: [0, 0b10], values: [1])) == .invalidHeader)
        // Rice gap beyond n, unary run beyond n.
        #expect(code(handMade(n: 10, k: 1, method: 2, index: [0, 0xFF, 0xFF], values: [1])) != nil)
        // Bitmap: popcount ≠ k, bit beyond n.
        #expect(
            code(handMade(n: 10, k: 1, method: 1, index: [0b11, 0], values: [1])) == .countMismatch)
        #expect(
            code(handMade(n: 10, k: 1, method: 1, index: [0, 0b100], values: [1])) == .indexOutOfRange)
        // Random-K: k > n and NaN values.
        var w = PayloadWriter()
        CodecHeader(codec: .randomK, count: 2).write(to: &w)
        w.writeVarint(3)
        w.write(UInt64(1))
        for _ in 0..<3 { w.write(Float(1)) }
        #expect(throws: CodecError.self) { try RandomKCodec(ratio: 1).decode(w.bytes) }
        var nan = PayloadWriter()
        CodecHeader(codec: .randomK, count: 2).write(to: &nan)
        nan.writeVarint(1)
        nan.write(UInt64(1))
        nan.write(Float.nan)
        #expect(throws: CodecError.self) { try RandomKCodec(ratio: 1).decode(nan.bytes) }
    }

    /// ≈2 000 seeded random and mutated payloads: every decoder returns or throws `CodecError`,
    /// and whatever it returns satisfies the `DecodedUpdate` invariants.
    @Test func boundedFuzzNeverCrashes() throws {
        var rng = SeededRNG(seed: 2_026)
        let seeds = try validPayloads()
        var decoded = 0
        for trial in 0..<2_000 {
            var p = seeds[trial % seeds.count]
            switch trial % 4 {
            case 0:
                for _ in 0...rng.nextInt(below: 4) {
                    p[rng.nextInt(below: p.count)] = UInt8(truncatingIfNeeded: rng.next())
                }
            case 1:
                let keep = 5 + rng.nextInt(below: p.count - 5)
                p =
                    Array(p.prefix(keep))
                    + (0..<rng.nextInt(below: 40)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            case 2:
                p.insert(UInt8(truncatingIfNeeded: rng.next()), at: rng.nextInt(below: p.count))
            default:
                p =
                    Array(p.prefix(5))
                    + (0..<rng.nextInt(below: 64)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            }
            for codec in Self.decoders {
                do {
                    let u = try codec.decode(p)
                    decoded += 1
                    if case .sparse(let n, let idx, let vals) = u {
                        #expect(idx.count == vals.count && idx.count <= n)
                        #expect(
                            zip(idx, idx.dropFirst()).allSatisfy { $0 < $1 } && idx.allSatisfy { Int($0) < n })
                        #expect(vals.allSatisfy { $0.isFinite })
                    }
                } catch is CodecError {
                } catch {
                    Issue.record("unexpected error \(error)")
                }
            }
        }
        #expect(decoded > 0)  // some mutations (e.g. of values) stay valid
    }
}
