import FedCore
import FedData
import FedEngine
import FedNN
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

    @Test func vectorsRoundTripAndRefuseRaggedBytes() throws {
        let v: [Float] = [1, -2.5, .leastNonzeroMagnitude, 3e38]
        #expect(try Wire.floats(Wire.vector(v), name: "v") == v)
        var ragged = Fedswift_V1_Vector()
        ragged.data = Data([1, 2, 3])
        #expect(throws: WireError.self) { try Wire.floats(ragged, name: "ragged") }
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
