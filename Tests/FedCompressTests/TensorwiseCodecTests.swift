import FedTensor
import Testing

@testable import FedCompress

@Suite struct TensorwiseCodecTests {
    let layout = [
        TensorwiseCodec.Tensor(name: "conv.weight", shape: [4, 2, 3, 3]),
        TensorwiseCodec.Tensor(name: "conv.bias", shape: [4]),
        TensorwiseCodec.Tensor(name: "fc.weight", shape: [10, 30]),
        TensorwiseCodec.Tensor(name: "fc.bias", shape: [10]),
    ]

    func vector(_ n: Int, seed: UInt64 = 1) -> [Float] {
        var rng = SeededRNG(seed: seed)
        return (0..<n).map { _ in rng.nextNormal() }
    }

    @Test func losslessInnerCodecRoundTripsExactly() throws {
        let codec = try TensorwiseCodec(tensors: layout, codec: IdentityCodec())
        #expect(codec.count == 72 + 4 + 300 + 10)
        let x = vector(codec.count)
        let payload = try codec.encode(x)
        #expect(try codec.decode(payload) == .dense(x))
        // Size: header (3 + 1 + 1 + varint 386 = 2) · varint 4 · per tensor: varint length + identity payload.
        let inner = layout.map { try! IdentityCodec().encode([Float](repeating: 0, count: $0.count)).count }
        let lengths = inner.map { $0 < 128 ? 1 : 2 }
        #expect(payload.count == 7 + 1 + zip(inner, lengths).map { $0 + $1 }.reduce(0, +))
    }

    @Test func topKAppliesPerTensorAndSmallTensorsGoUncompressed() throws {
        let codec = try TensorwiseCodec(tensors: layout, codec: TopKCodec(ratio: 0.1), minimumElements: 50)
        let x = vector(codec.count, seed: 2)
        guard case .sparse(let n, let indices, let values) = try codec.decode(try codec.encode(x)) else {
            Issue.record("expected a sparse decoding")
            return
        }
        #expect(n == 386)
        // conv.weight: top 7 of 72 (round(7.2)); conv.bias: all 4; fc.weight: top 30 of 300; fc.bias: all 10.
        #expect(indices.count == 7 + 4 + 30 + 10)
        #expect(zip(indices, indices.dropFirst()).allSatisfy { $0 < $1 })
        for (i, v) in zip(indices, values) { #expect(v == x[Int(i)]) }
        // Each big tensor keeps its own largest magnitudes.
        for (range, k) in [(0..<72, 7), (76..<376, 30)] {
            let kept = indices.filter { range.contains(Int($0)) }.map { Int($0) }
            let top = range.sorted { (abs(x[$0]), $1) > (abs(x[$1]), $0) }.prefix(k)
            #expect(Set(kept) == Set(top))
        }
        #expect(Set(72..<76).isSubset(of: Set(indices.map(Int.init))))
        #expect(Set(376..<386).isSubset(of: Set(indices.map(Int.init))))
    }

    @Test func contextCarriesEachTensorsShapeStreamAndKey() throws {
        final class Recorder: Codec, @unchecked Sendable {
            var contexts: [CodecContext] = []
            var id: CodecID { .identity }
            var name: String { "recorder" }
            func encode(_ values: UnsafeBufferPointer<Float>, context: CodecContext) throws -> [UInt8] {
                contexts.append(context)
                return try IdentityCodec().encode(values, context: context)
            }
            func decode(_ payload: [UInt8]) throws -> DecodedUpdate { try IdentityCodec().decode(payload) }
        }
        let recorder = Recorder()
        let codec = try TensorwiseCodec(tensors: layout, codec: recorder, minimumElements: 50)
        _ = try codec.encode(
            vector(386), context: CodecContext(seed: 9, stream: "client/3/round/2/uplink", key: "client/3/uplink"))
        #expect(recorder.contexts.map(\.shape) == [[4, 2, 3, 3], [10, 30]])
        #expect(
            recorder.contexts.map(\.stream) == [
                "client/3/round/2/uplink/conv.weight", "client/3/round/2/uplink/fc.weight",
            ])
        #expect(recorder.contexts.map(\.stateKey) == ["client/3/uplink/conv.weight", "client/3/uplink/fc.weight"])
        #expect(recorder.contexts.allSatisfy { $0.seed == 9 })
    }

    @Test func powerSGDWarmStartsAreKeptPerKeyNotPerRound() throws {
        let power = PowerSGDCodec(rank: 2)
        let codec = try TensorwiseCodec(tensors: layout, codec: power, minimumElements: 50)
        for round in 1...3 {
            for client in 0..<2 {
                _ = try codec.encode(
                    vector(386, seed: UInt64(round * 10 + client)),
                    context: CodecContext(
                        seed: 1, stream: "client/\(client)/round/\(round)/uplink", key: "client/\(client)/uplink"))
            }
        }
        #expect(power.warmStartCount == 2 * 2)
    }

    @Test func hostilePayloadsThrow() throws {
        let codec = try TensorwiseCodec(tensors: layout, codec: TopKCodec(ratio: 0.1), minimumElements: 50)
        let good = try codec.encode(vector(386))
        // Every truncation throws.
        for cut in 0..<good.count {
            #expect(throws: CodecError.self) { try codec.decode(Array(good.prefix(cut))) }
        }
        // Trailing bytes, a wrong tensor count, a length running past the end.
        #expect(throws: CodecError.self) { try codec.decode(good + [0]) }
        var wrongCount = good
        wrongCount[7] = 3
        #expect(throws: CodecError.self) { try codec.decode(wrongCount) }
        var longLength = good
        longLength[8] = 0xFF
        longLength.insert(0x7F, at: 9)
        #expect(throws: CodecError.self) { try codec.decode(longLength) }
        // Another layout's payload: the element counts disagree.
        let other = try TensorwiseCodec(tensors: Array(layout.prefix(2)), codec: TopKCodec(ratio: 0.1))
        #expect(throws: CodecError.self) { try codec.decode(try other.encode(vector(76))) }
        // A tensor payload of the right codec but another length.
        #expect(throws: CodecError.self) { try codec.encode(vector(385)) }
        // Mutations: return a valid update or throw, never trap.
        var rng = SeededRNG(seed: 11)
        for _ in 0..<2_000 {
            var p = good
            for _ in 0...rng.nextInt(below: 3) {
                p[rng.nextInt(below: p.count)] = UInt8(truncatingIfNeeded: rng.next())
            }
            guard let u = try? codec.decode(p) else { continue }
            #expect(u.count == 386)
            if case .sparse(_, let idx, let vals) = u {
                #expect(idx.count == vals.count && idx.allSatisfy { $0 < 386 })
                // Top-K rejects non-finite values; the uncompressed small tensors carry what they got.
                let small = Set(72..<76).union(376..<386)
                let finite = zip(idx, vals).allSatisfy { $1.isFinite || small.contains(Int($0)) }
                #expect(finite)
            }
        }
    }

    @Test func invalidLayoutsThrow() {
        #expect(throws: CodecError.self) { try TensorwiseCodec(tensors: [], codec: IdentityCodec()) }
        #expect(throws: CodecError.self) {
            try TensorwiseCodec(tensors: [.init(name: "w", shape: [2, -1])], codec: IdentityCodec())
        }
        #expect(throws: CodecError.self) {
            try TensorwiseCodec(tensors: layout, codec: IdentityCodec(), minimumElements: -1)
        }
    }
}
