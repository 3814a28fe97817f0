import FedTensor
import Testing

@testable import FedCompress

@Suite struct CodecsTests {
    @Test func everyCatalogEntryBuildsItsCodec() throws {
        #expect(
            Codecs.catalog.map(\.name) == [
                "identity", "fp16", "bf16", "topk", "randomk", "threshold", "qsgd", "terngrad", "signsgd", "onebit",
                "natural",
                "stc", "powersgd", "composite",
            ])
        #expect(try Codecs.make(name: "identity").id == .identity)
        #expect(try Codecs.make(name: "fp16").id == .fp16)
        #expect(try Codecs.make(name: "bf16").id == .bf16)
        #expect(try Codecs.make(name: "topk").name == "topk(ratio=0.01)")
        #expect(
            try Codecs.make(name: "topk", parameters: ["k": 5, "approximate": 1, "fp16values": 1]).name
                == "topk(k=5,approximate,fp16)")
        #expect(
            try Codecs.make(name: "randomk", parameters: ["ratio": 0.1, "unbiased": 1]).name
                == "randomk(ratio=0.1,unbiased)")
        #expect(
            try Codecs.make(name: "threshold", parameters: ["threshold": 0.5]).name
                == "threshold(threshold=0.5)")
        #expect(
            try Codecs.make(name: "composite", parameters: ["ratio": 0.1, "s": 4, "deflate": 1]).name
                == "composite(ratio=0.1,qsgd(s=4,bucket=512),deflate)")
        #expect(try Codecs.make(name: "composite", parameters: ["s": 1]).name == "composite(ratio=0.01,fp16)")
    }

    @Test func unknownNamesAndParametersNameTheAllowedOnes() {
        func message(_ name: String, _ parameters: [String: Double] = [:]) -> String? {
            do {
                _ = try Codecs.make(name: name, parameters: parameters)
                return nil
            } catch {
                return (error as? CodecError)?.message
            }
        }
        #expect(
            message("zip")
                == "unknown codec 'zip'; known codecs: identity, fp16, bf16, topk, randomk, threshold, qsgd, terngrad, signsgd, onebit, natural, stc, powersgd, composite"
        )
        #expect(
            message("topk", ["raito": 0.1])
                == "codec 'topk' has no parameter 'raito'; allowed: ratio, k, approximate, fp16values")
        #expect(message("fp16", ["ratio": 1]) == "codec 'fp16' has no parameter 'ratio'; allowed: none")
        #expect(message("threshold") == "codec 'threshold' needs the parameter 'threshold'")
        #expect(message("topk", ["ratio": 0.1, "k": 3]) != nil)
        #expect(message("topk", ["ratio": 2]) != nil)
        #expect(message("topk", ["k": 1.5]) != nil)
        #expect(message("randomk", ["unbiased": 2]) != nil)
        #expect(message("threshold", ["threshold": -1]) != nil)
        #expect(message("composite", ["ratio": 0]) != nil)
        #expect(message("composite", ["s": 2.5]) != nil)
        #expect(message("composite", ["deflate": 2]) != nil)
    }
}

/// The identity codec is also the dense wire format of models and updates, written and read in place.
@Suite struct DenseFormatTests {
    @Test func inPlaceEncodingIsTheIdentityCodecsPayload() throws {
        var rng = SeededRNG(seed: 4)
        for count in [0, 1, 5, 127, 128, 16_384, 100_000] {
            let values = (0..<count).map { _ in rng.nextNormal() * 100 }
            var bytes: [UInt8] = [7, 7, 7]
            values.withUnsafeBufferPointer { IdentityCodec.encode($0, into: &bytes) }
            // FSC, version 1, the identity codec's id, the count as a varint, the floats.
            var varint: [UInt8] = []
            var x = UInt64(count)
            repeat {
                varint.append(UInt8(x & 0x7F) | (x >= 0x80 ? 0x80 : 0))
                x >>= 7
            } while x > 0
            let header = Array("FSC".utf8) + [1, CodecID.identity.rawValue] + varint
            #expect(Array(bytes.prefix(header.count)) == header)
            #expect(bytes.count == IdentityCodec.size(count: count))
            #expect(bytes == (try IdentityCodec().encode(values)))
            #expect(try IdentityCodec().decode(bytes) == .dense(values))
            var out = [Float](repeating: 9, count: count)
            try out.withUnsafeMutableBufferPointer { try IdentityCodec.decode(bytes, into: $0) }
            #expect(out == values)
        }
    }

    @Test func inPlaceDecodingRefusesHostilePayloads() {
        var bytes: [UInt8] = []
        [Float](repeating: 1, count: 4).withUnsafeBufferPointer { IdentityCodec.encode($0, into: &bytes) }
        var out = [Float](repeating: 0, count: 4)
        var wrongCount = [Float](repeating: 0, count: 5)
        var nan = bytes
        nan[6..<10] = [0x00, 0x00, 0xC0, 0x7F]
        var infinite = bytes
        infinite[10..<14] = [0x00, 0x00, 0x80, 0x7F]
        var badMagic = bytes
        badMagic[0] = 0
        var otherCodec = bytes
        otherCodec[4] = CodecID.fp16.rawValue
        for (payload, code) in [
            (Array(bytes.prefix(4)), CodecError.Code.truncated), (Array(bytes.dropLast()), .truncated),
            (badMagic, .badMagic), (otherCodec, .wrongCodec), (nan, .nonFinite), (infinite, .nonFinite),
            (bytes + [0], .trailingBytes),
        ] {
            let error = #expect(throws: CodecError.self) {
                try out.withUnsafeMutableBufferPointer { try IdentityCodec.decode(payload, into: $0) }
            }
            #expect(error?.code == code, "\(payload)")
        }
        let error = #expect(throws: CodecError.self) {
            try wrongCount.withUnsafeMutableBufferPointer { try IdentityCodec.decode(bytes, into: $0) }
        }
        #expect(error?.code == .countMismatch)
    }
}
