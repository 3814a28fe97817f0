import FedCompress
import FedCore
import FedData
import FedEngine
import FedNN
import FedTensor
import Foundation
import GRPCCore
import GRPCInProcessTransport
import Testing

@testable import FedNet

@Suite struct WireTests {
    @Test func chunksReassembleInOrderOnly() throws {
        let payload = (0..<2_500).map { UInt8($0 % 251) }
        let pieces = Wire.chunks(payload, size: 1_000)
        #expect(pieces.map(\.offset) == [0, 1_000, 2_000] && pieces.map(\.last) == [false, false, true])
        var a = try ChunkAssembler(total: payload.count, maximum: 10_000)
        for p in pieces { try a.add(offset: p.offset, data: p.data, last: p.last) }
        #expect(a.complete && a.bytes == payload)
        #expect(Wire.chunks([], size: 10).count == 1)
        // Out of order, repeated, past the announced end, a short last chunk, a chunk after the last.
        var b = try ChunkAssembler(total: payload.count, maximum: 10_000)
        #expect(throws: WireError.self) { try b.add(offset: 1_000, data: pieces[1].data, last: false) }
        try b.add(offset: 0, data: pieces[0].data, last: false)
        #expect(throws: WireError.self) { try b.add(offset: 0, data: pieces[0].data, last: false) }
        #expect(throws: WireError.self) { try b.add(offset: 1_000, data: Data(count: 2_000), last: false) }
        #expect(throws: WireError.self) { try b.add(offset: 1_000, data: pieces[1].data, last: true) }
        var c = try ChunkAssembler(total: 3, maximum: 10)
        try c.add(offset: 0, data: Data([1, 2, 3]), last: true)
        #expect(throws: WireError.self) { try c.add(offset: 3, data: Data(), last: true) }
        // An announced size above the limit is refused before anything is allocated.
        #expect(throws: WireError.self) { try ChunkAssembler(total: 1 << 40, maximum: 1 << 20) }
    }

    @Test func vectorsTravelAfterThePayloadAndAreCheckedAgainstTheirLayout() throws {
        let payload: [UInt8] = [1, 2, 3, 4, 5]
        let values: [Float] = [0.5, -1]
        let vectors: [String: [Float]] = ["b": [1, -2.5, .leastNonzeroMagnitude], "a": [3e38]]
        // Cut into chunks of 3 bytes straight from the parts: every chunk but the last is full, and
        // the pieces join to head, values, then the vectors by name.
        let (pieces, layout, total) = Wire.chunks(payload, values: values, vectors: vectors, size: 3)
        #expect(total == 5 + 8 + 16 && layout.map(\.name) == ["a", "b"] && layout.map(\.count) == [1, 3])
        #expect(pieces.map(\.offset) == Array(stride(from: 0, to: total, by: 3)))
        #expect(pieces.dropLast().allSatisfy { $0.data.count == 3 && !$0.last } && pieces.last!.last)
        var bytes = pieces.reduce(into: [UInt8]()) { $0 += $1.data }
        var expected = payload
        for v in [values, vectors["a"]!, vectors["b"]!] { v.withUnsafeBytes { expected += $0 } }
        #expect(bytes == expected)
        let whole = bytes
        #expect(try Wire.unpack(&bytes, layout: layout) == vectors)
        #expect(bytes == payload + whole[5..<13])
        var plain = payload
        #expect(try Wire.unpack(&plain, layout: []).isEmpty && plain == payload)
        // An exact multiple of the chunk size ends with a full last chunk; nothing at all is one empty chunk.
        let even = Wire.chunks([1, 2, 3, 4, 5, 6], vectors: [:], size: 3).chunks
        #expect(even.map(\.data.count) == [3, 3] && even.map(\.last) == [false, true])
        let empty = Wire.chunks([], vectors: [:], size: 3).chunks
        #expect(empty.count == 1 && empty[0].data.isEmpty && empty[0].last)
        // Vectors larger than the payload, and a name twice.
        var big = Fedswift_V1_VectorLayout()
        big.name = "big"
        big.count = 8
        var copy = whole
        #expect(throws: WireError.self) { try Wire.unpack(&copy, layout: [big]) }
        big.count = UInt64.max
        #expect(throws: WireError.self) { try Wire.unpack(&copy, layout: [big]) }
        #expect(throws: WireError.self) { try Wire.unpack(&copy, layout: [layout[1], layout[1]]) }
    }

    /// The coordinator's upload bound holds every catalog codec at its most expansive settings,
    /// per tensor and flat, on the mlp's tensors.
    @Test func everyCodecStaysWithinTheUploadBound() throws {
        let model = try ModelZoo.make("mlp", seed: 1)
        let tensors = model.parameters.entries.map { TensorwiseCodec.Tensor(name: $0.name, shape: $0.shape.dims) }
        let n = model.parameterCount
        var rng = SeededRNG(seed: 9)
        let values = (0..<n).map { _ in Float(Double(rng.next() % 2_000_001) / 1e6 - 1) }
        let settings: [String: [[String: Double]]] = [
            "topk": [["ratio": 1], ["ratio": 1, "approximate": 1]],
            "randomk": [["ratio": 1]],
            "threshold": [["threshold": 0]],
            "qsgd": [["s": 16_777_216, "elias": 1, "bucket": 1], ["s": 16_777_216, "bucket": 1]],
            "terngrad": [["bucket": 1]],
            "stc": [["ratio": 1]],
            "powersgd": [["rank": 65_536]],
            "composite": [["ratio": 1, "s": 0, "deflate": 1], ["ratio": 1, "s": 0]],
        ]
        let bound = Wire.maximumUpload(parameterCount: n, tensors: tensors.count, vectorValues: 0)
        for description in Codecs.catalog {
            for parameters in settings[description.name] ?? [[:]] {
                let inner = try Codecs.make(name: description.name, parameters: parameters)
                for layout in [tensors, [TensorwiseCodec.Tensor(name: "update", shape: [n])]] {
                    let codec = try TensorwiseCodec(tensors: layout, codec: inner, minimumElements: 0)
                    let size = try codec.encode(values, context: CodecContext(seed: 1, stream: "bound")).count
                    #expect(size <= bound, "\(description.name) \(parameters): \(size) bytes above \(bound)")
                }
            }
        }
    }
}

/// Joins the coordinator refuses, each with its status code, over the in-process transport.
@Suite(.serialized) struct JoinTests {
    func attempt(_ edit: (inout Fedswift_V1_Join) -> Void, tokens: [Int: String]? = nil) async throws -> RPCError.Code?
    {
        let config = try NetworkRoundTests.config()
        let coordinator = try Coordinator(config: config, tokens: tokens)
        let transport = InProcessTransport()
        let server = GRPCServer(transport: transport.server, services: [coordinator.service])
        var join = Fedswift_V1_Join()
        join.protocolVersion = Wire.protocolVersion
        join.clientIndex = 1
        join.token = "secret-1"
        join.capabilities.parameterCount = UInt64(coordinator.engine.model.parameterCount)
        join.capabilities.experimentFingerprint = config.fingerprint
        edit(&join)
        var first = Fedswift_V1_ClientMessage()
        first.join = join
        let message = first
        var code: RPCError.Code?
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await server.serve() }
            try await withGRPCClient(transport: transport.client) { client in
                let stub = Fedswift_V1_Coordinator.Client(wrapping: client)
                do {
                    try await stub.session(
                        requestProducer: { writer in
                            try await writer.write(message)
                            try await Task.sleep(for: .seconds(5))
                        },
                        onResponse: { response in
                            for try await m in response.messages {
                                if case .welcome? = m.kind { return }
                            }
                        })
                } catch let error as RPCError {
                    code = error.code
                }
            }
            server.beginGracefulShutdown()
        }
        return code
    }

    @Test func tokensAreComparedAsSHA256Digests() {
        // SHA-256("secret-1"), as `printf %s secret-1 | sha256sum` prints it.
        #expect(
            CoordinatorService.digest("secret-1") == "f7e7c36e458e80e6b6a2c67d0a9ec09bd718dadd7bfa8d6bf6e7ad526e46c2f7")
        #expect(CoordinatorService.sameDigest("ab", "ab") && !CoordinatorService.sameDigest("ab", "ac"))
        #expect(!CoordinatorService.sameDigest("ab", "abc"))
    }

    @Test func refusedJoinsCarryTheirStatus() async throws {
        #expect(try await attempt { _ in } == nil)  // welcomed
        #expect(try await attempt({ _ in }, tokens: [1: CoordinatorService.digest("secret-1")]) == nil)
        #expect(
            try await attempt({ $0.token = "guess" }, tokens: [1: CoordinatorService.digest("secret-1")])
                == .unauthenticated)
        #expect(
            try await attempt({ $0.clientIndex = 2 }, tokens: [1: CoordinatorService.digest("secret-1")])
                == .unauthenticated)
        #expect(try await attempt { $0.clientIndex = 99 } == .invalidArgument)
        #expect(try await attempt { $0.protocolVersion = 9 } == .failedPrecondition)
        #expect(try await attempt { $0.capabilities.experimentFingerprint = "other" } == .failedPrecondition)
        #expect(try await attempt { $0.capabilities.parameterCount = 7 } == .failedPrecondition)
    }
}
