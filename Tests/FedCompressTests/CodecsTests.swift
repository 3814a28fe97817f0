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
