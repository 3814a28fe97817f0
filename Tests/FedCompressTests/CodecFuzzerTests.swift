import FedTensor
import Testing

@testable import FedCompress

@Suite struct CodecFuzzerTests {
    /// A decoder that accepts any payload with a FedSwift prefix and returns a broken update.
    struct BrokenCodec: Codec {
        enum Fault: String { case nonFinite, unsortedIndices, indexOutOfRange, foreignError }
        struct NotACodecError: Error {}

        let fault: Fault
        var id: CodecID { .topK }
        var name: String { "broken(\(fault.rawValue))" }

        func encode(_ values: UnsafeBufferPointer<Float>, context: CodecContext) throws -> [UInt8] {
            try TopKCodec(ratio: 0.5).encode(values, context: context)
        }

        func decode(_ payload: [UInt8]) throws -> DecodedUpdate {
            guard payload.starts(with: CodecHeader.magic) else { throw CodecError(.badMagic, "not ours") }
            switch fault {
            case .nonFinite: return .dense([1, .nan, 2])
            case .unsortedIndices: return .sparse(count: 10, indices: [4, 2], values: [1, 1])
            case .indexOutOfRange: return .sparse(count: 3, indices: [1, 3], values: [1, 1])
            case .foreignError: throw NotACodecError()
            }
        }
    }

    @Test func defaultCodecsSurviveThreeThousandIterations() throws {
        var progress: [Int] = []
        let report = try CodecFuzzer.run(iterations: 3_000, seed: 7) { progress.append($0) }
        #expect(report.violations.isEmpty, "\(report.violations.joined(separator: "\n"))")
        #expect(report.violationCount == 0)
        #expect(report.iterations == 3_000)
        #expect(report.accepted > 0)
        #expect(report.rejected > 0)
        let codecs = try CodecFuzzer.defaultCodecs()
        #expect(report.codecNames.count == codecs.count)
        #expect(Set(report.codecNames).count == codecs.count)
        // Every payload (seeds plus one per iteration) went through every codec, and every decode
        // returned or threw CodecError.
        #expect(report.payloadsTried > 3_000)
        #expect(report.accepted + report.rejected == report.payloadsTried * codecs.count)
        let perCodec = report.perCodec.values
        #expect(perCodec.reduce(0) { $0 + $1.accepted } == report.accepted)
        #expect(perCodec.reduce(0) { $0 + $1.rejected } == report.rejected)
        // Each codec decoded at least its own seed payloads.
        for name in report.codecNames { #expect(report.perCodec[name]!.accepted > 0, "\(name)") }
        #expect(progress.last == 3_000)
        #expect(progress == progress.sorted())
    }

    @Test func sameSeedSameReport() throws {
        let a = try CodecFuzzer.run(iterations: 200, seed: 11)
        let b = try CodecFuzzer.run(iterations: 200, seed: 11)
        #expect(a.accepted == b.accepted && a.rejected == b.rejected && a.perCodec == b.perCodec)
    }

    @Test(arguments: [
        BrokenCodec.Fault.nonFinite, .unsortedIndices, .indexOutOfRange, .foreignError,
    ])
    func brokenDecodersAreReported(fault: BrokenCodec.Fault) throws {
        let broken = BrokenCodec(fault: fault)
        let report = try CodecFuzzer.run(iterations: 50, seed: 3, codecs: [STCCodec(ratio: 0.1), broken])
        #expect(report.violationCount > 0)
        #expect(!report.violations.isEmpty && report.violations.count <= CodecFuzzer.maximumViolationsKept)
        #expect(report.violations.allSatisfy { $0.hasPrefix(broken.name) }, "\(report.violations.first ?? "")")
        let expected =
            switch fault {
            case .nonFinite: "nan"
            case .unsortedIndices: "does not exceed"
            case .indexOutOfRange: "not below the count"
            case .foreignError: "not CodecError"
            }
        #expect(report.violations.contains { $0.contains(expected) }, "\(report.violations.first ?? "")")
    }

    @Test func bitExactCodecsMayCarryNonFiniteValues() throws {
        // Identity's contract is a bit-exact round trip, NaN included: allowed and counted.
        #expect(CodecFuzzer.problem(with: .dense([.nan]), bitExact: true) == nil)
        #expect(CodecFuzzer.problem(with: .dense([.infinity]), bitExact: false) != nil)
        #expect(
            CodecFuzzer.problem(with: .sparse(count: 5, indices: [0, 4], values: [1, -.infinity]), bitExact: false)
                != nil)
        #expect(CodecFuzzer.problem(with: .sparse(count: 5, indices: [0, 4], values: [1]), bitExact: false) != nil)
        #expect(CodecFuzzer.problem(with: .sparse(count: 5, indices: [1, 1], values: [1, 1]), bitExact: false) != nil)
        #expect(
            CodecFuzzer.problem(with: .sparse(count: Int(Int32.max), indices: [], values: []), bitExact: false) == nil)
        #expect(
            CodecFuzzer.problem(with: .sparse(count: Int(Int32.max) + 1, indices: [], values: []), bitExact: false)
                != nil)
        let report = try CodecFuzzer.run(iterations: 500, seed: 5, codecs: [IdentityCodec()])
        #expect(report.violations.isEmpty, "\(report.violations.first ?? "")")
        #expect(report.nonFinitePassedThrough > 0)
    }

    @Test func invalidArgumentsThrow() {
        #expect(throws: CodecError.self) { try CodecFuzzer.run(iterations: -1, seed: 0) }
        #expect(throws: CodecError.self) { try CodecFuzzer.run(iterations: 1, seed: 0, codecs: []) }
    }
}
