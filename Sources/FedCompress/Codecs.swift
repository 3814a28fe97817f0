/// Builds codecs by name, e.g. from a configuration file:
/// ```swift
/// let codec = try Codecs.make(name: "topk", parameters: ["ratio": 0.01])
/// ```
/// `catalog` lists every name with its parameters, their meaning, and how the codec is built.
public enum Codecs {
    public static let catalog: [CodecDescription] = [
        CodecDescription(name: "identity", summary: "uncompressed float32 (lossless)", parameters: []) { _ in
            IdentityCodec()
        },
        CodecDescription(name: "fp16", summary: "IEEE half precision, round to nearest even", parameters: []) { _ in
            FP16Codec()
        },
        CodecDescription(name: "bf16", summary: "bfloat16, round to nearest even", parameters: []) { _ in BF16Codec() },
        CodecDescription(
            name: "topk", summary: "keep the k largest magnitudes (sparse)",
            parameters: [
                .init(name: "ratio", meaning: "fraction of elements kept, in (0, 1]", defaultValue: 0.01),
                .init(name: "k", meaning: "number of elements kept (instead of ratio), ≥ 0", defaultValue: nil),
                .init(
                    name: "approximate", meaning: "1: DGC sampled threshold keeping k…1.25k; 0: exact", defaultValue: 0),
                .init(name: "fp16values", meaning: "1: store kept values as fp16; 0: fp32", defaultValue: 0),
            ]
        ) { a in
            let budget: TopKCodec.Budget
            if let k = a.given["k"] {
                guard a.given["ratio"] == nil else {
                    throw CodecError(.invalidParameter, "topk takes either 'ratio' or 'k', not both")
                }
                guard k >= 0, k == k.rounded(), k <= Double(CodecHeader.maximumCount) else {
                    throw CodecError(.invalidParameter, "topk k must be a whole number ≥ 0, got \(k)")
                }
                budget = .count(Int(k))
            } else {
                budget = .ratio(a.value("ratio")!)
            }
            let codec = TopKCodec(
                budget: budget, approximate: try a.flag("approximate"), valueFormat: try a.valueFormat())
            try codec.validate()
            return codec
        },
        CodecDescription(
            name: "randomk", summary: "keep k random elements; indices regenerated from a seed (sparse)",
            parameters: [
                .init(name: "ratio", meaning: "fraction of elements kept, in (0, 1]", defaultValue: 0.01),
                .init(name: "unbiased", meaning: "1: scale kept values by n/k; 0: keep as is", defaultValue: 0),
            ]
        ) { a in
            let codec = RandomKCodec(ratio: a.value("ratio")!, unbiased: try a.flag("unbiased"))
            try codec.validate()
            return codec
        },
        CodecDescription(
            name: "threshold", summary: "keep every element with |x| ≥ threshold (sparse)",
            parameters: [
                .init(name: "threshold", meaning: "magnitude threshold, finite and ≥ 0 (required)", defaultValue: nil),
                .init(name: "fp16values", meaning: "1: store kept values as fp16; 0: fp32", defaultValue: 0),
            ]
        ) { a in
            guard let t = a.given["threshold"] else {
                throw CodecError(.invalidParameter, "codec 'threshold' needs the parameter 'threshold'")
            }
            let codec = ThresholdCodec(threshold: Float(t), valueFormat: try a.valueFormat())
            try codec.validate()
            return codec
        },
        CodecDescription(
            name: "qsgd", summary: "QSGD: stochastic rounding to s levels of each bucket's norm (unbiased)",
            parameters: [
                .init(name: "s", meaning: "levels, 1...2^24", defaultValue: 8),
                .init(name: "bucket", meaning: "elements per norm, ≥ 1", defaultValue: 512),
                .init(name: "elias", meaning: "1: Elias-gamma coded levels; 0: fixed width", defaultValue: 0),
            ]
        ) { a in
            QSGDCodec(
                levels: try a.integer("s", 1...QSGDCodec.maximumLevels),
                bucketSize: try a.integer("bucket", 1...CodecHeader.maximumCount), elias: try a.flag("elias"))
        },
        CodecDescription(
            name: "terngrad", summary: "TernGrad: s·sign·Bernoulli(|x|/s), 2 bits per element (unbiased)",
            parameters: [.init(name: "bucket", meaning: "elements per scale; 0 = whole tensor", defaultValue: 0)]
        ) { a in
            let bucket = try a.integer("bucket", 0...CodecHeader.maximumCount)
            return TernGradCodec(bucketSize: bucket == 0 ? nil : bucket)
        },
        CodecDescription(
            name: "signsgd", summary: "signSGD: 1 bit per element (EF-signSGD with scaled=1 and error feedback)",
            parameters: [.init(name: "scaled", meaning: "1: multiply by ‖x‖₁/n; 0: ±1", defaultValue: 0)]
        ) { a in SignSGDCodec(scaled: try a.flag("scaled")) },
        CodecDescription(
            name: "onebit", summary: "1-bit SGD: sign bit, decoded to the mean of its sign group", parameters: []
        ) { _ in OneBitCodec() },
        CodecDescription(
            name: "natural", summary: "natural compression: stochastic rounding to powers of two (unbiased)",
            parameters: []
        ) { _ in NaturalCompressionCodec() },
        CodecDescription(
            name: "stc", summary: "sparse ternary compression: top-k signs times their mean magnitude (sparse)",
            parameters: [.init(name: "ratio", meaning: "fraction of elements kept, in (0, 1]", defaultValue: 0.01)]
        ) { a in
            let ratio = a.value("ratio")!
            guard ratio > 0, ratio <= 1 else {
                throw CodecError(.invalidParameter, "stc ratio must be in (0, 1], got \(ratio)")
            }
            return STCCodec(ratio: ratio)
        },
        CodecDescription(
            name: "powersgd", summary: "PowerSGD: rank-r P·Qᵀ with warm-started Q, one power iteration",
            parameters: [.init(name: "rank", meaning: "rank of the approximation, ≥ 1", defaultValue: 4)]
        ) { a in PowerSGDCodec(rank: try a.integer("rank", 1...65_536)) },
        CodecDescription(
            name: "composite", summary: "Top-K, then quantised kept values, coded indices, optional zlib (sparse)",
            parameters: [
                .init(name: "ratio", meaning: "fraction of elements kept, in (0, 1]", defaultValue: 0.01),
                .init(
                    name: "s", meaning: "kept values: 0 fp32, 1 fp16, 2...2^24 QSGD levels (bucket 512)",
                    defaultValue: 0),
                .init(name: "deflate", meaning: "1: zlib over the inner payload; 0: none", defaultValue: 0),
            ]
        ) { a in
            let s = try a.integer("s", 0...QSGDCodec.maximumLevels)
            let quantizer: CompositeCodec.ValueQuantizer = s == 0 ? .fp32 : s == 1 ? .fp16 : .qsgd(levels: s)
            let codec = CompositeCodec(
                ratio: a.value("ratio")!, valueQuantizer: quantizer, deflate: try a.flag("deflate"))
            try codec.validate()
            return codec
        },
    ]

    /// The catalog entry called `name`, if any.
    public static func description(of name: String) -> CodecDescription? { catalog.first { $0.name == name } }

    /// The codec called `name` with `parameters`.
    /// - Throws: `CodecError.invalidParameter` for an unknown name or parameter (naming the
    ///   allowed ones), a missing required parameter, or a value out of range.
    public static func make(name: String, parameters: [String: Double] = [:]) throws -> any Codec {
        guard let description = description(of: name) else {
            let known = catalog.map(\.name).joined(separator: ", ")
            throw CodecError(.invalidParameter, "unknown codec '\(name)'; known codecs: \(known)")
        }
        let allowed = description.parameters.map(\.name)
        for key in parameters.keys.sorted() where !allowed.contains(key) {
            let list = allowed.isEmpty ? "none" : allowed.joined(separator: ", ")
            throw CodecError(.invalidParameter, "codec '\(name)' has no parameter '\(key)'; allowed: \(list)")
        }
        var defaults: [String: Double] = [:]
        for p in description.parameters { defaults[p.name] = p.defaultValue }
        return try description.build(CodecArguments(codec: name, given: parameters, defaults: defaults))
    }
}
