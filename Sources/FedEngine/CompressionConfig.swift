import FedCompress

/// The `compression:` section of an experiment: how updates travel up, how the model travels down,
/// how per-client keep ratios are chosen and how sparse updates are averaged.
///
/// ```yaml
/// compression:
///   uplink: {codec: topk, ratio: 0.01, error_feedback: residual, min_tensor_elements: 1000}
///   downlink: {codec: fp16}
///   ratio_policy: {name: bcrs, ratio: 0.01, min_ratio: 0.001, max_ratio: 0.1}
///   aggregation: opwa
/// ```
/// Every key of `uplink` / `downlink` other than the ones below is a parameter of the codec
/// (`fedswift codecs` lists them).
public struct CompressionConfig: Sendable {
    /// One direction of the link.
    public struct Channel: Sendable {
        /// The error feedback schemes by their names in experiment files.
        public enum Feedback: String, CaseIterable, Sendable {
            case none, residual, ef21, dgc
        }

        /// A codec name from `Codecs.catalog`.
        public var codec: String
        public var parameters: [String: Double]
        /// Any (uplink); none or residual (downlink, a server-side residual).
        public var errorFeedback: Feedback
        /// DGC's momentum m (error_feedback: dgc).
        public var momentum: Double
        /// Encode each tensor separately (its shape known to the codec) rather than the flat update.
        public var perTensor: Bool
        /// Tensors with fewer elements are sent uncompressed (float32).
        public var minTensorElements: Int

        static let reserved = ["codec", "error_feedback", "momentum", "per_tensor", "min_tensor_elements"]

        public var feedback: ErrorFeedback {
            switch errorFeedback {
            case .none: .none
            case .residual: .residual
            case .ef21: .ef21
            case .dgc: .dgc(momentum: Float(momentum))
            }
        }

        init(_ r: inout ConfigReader, feedbacks: [Feedback]) throws {
            codec = try r.string("codec", allowed: Codecs.catalog.map(\.name))
            errorFeedback = Feedback(
                rawValue: try r.string("error_feedback", default: "none", allowed: feedbacks.map(\.rawValue)))!
            momentum = try r.double("momentum", default: 0.9, range: 0...1)
            perTensor = try r.bool("per_tensor", default: true)
            minTensorElements = try r.int("min_tensor_elements", default: 0, range: 0...Int(Int32.max))
            parameters = try r.numbers(except: Set(Self.reserved))
            do {
                _ = try Codecs.make(name: codec, parameters: parameters)
            } catch let e as CodecError {
                throw ConfigError(key: r.key("codec"), e.message)
            }
            if codec == "powersgd" && !perTensor {
                throw ConfigError(key: r.key("per_tensor"), "powersgd needs the tensor shapes: per_tensor must be true")
            }
            try r.finish()
        }

        /// The codec for one client or broadcast, over the model's tensors; `ratio` overrides the
        /// codec's keep ratio (from a ratio policy).
        public func make(tensors: [TensorwiseCodec.Tensor], ratio: Double? = nil) throws -> TensorwiseCodec {
            var p = parameters
            if let ratio { p["ratio"] = ratio }
            let inner = try Codecs.make(name: codec, parameters: p)
            let layout =
                perTensor
                ? tensors : [TensorwiseCodec.Tensor(name: "update", shape: [tensors.reduce(0) { $0 + $1.count }])]
            return try TensorwiseCodec(
                tensors: layout, codec: inner, minimumElements: perTensor ? minTensorElements : 0)
        }

        var yaml: [String: Any] {
            var m: [String: Any] = [
                "codec": codec, "error_feedback": errorFeedback.rawValue, "per_tensor": perTensor,
                "min_tensor_elements": minTensorElements,
            ]
            if errorFeedback == .dgc { m["momentum"] = momentum }
            for (k, v) in parameters { m[k] = v }
            return m
        }
    }

    /// How each selected client's keep ratio is chosen every round (uplink codecs with a `ratio`).
    public struct Policy: Sendable {
        /// The policies by their names in experiment files.
        public enum Name: String, CaseIterable, Sendable {
            case fixed
            case dgcWarmup = "dgc_warmup"
            case bcrs, adatopk
        }

        public var name: Name
        /// Fixed ratio, DGC's final ratio, or BCRS's base ratio r₀.
        public var ratio: Double
        public var minRatio: Double
        public var maxRatio: Double
        /// DGC warm-up length W in rounds.
        public var warmupRounds: Int
        /// AdaTopK's target upload time τ in seconds.
        public var targetTime: Double?
        /// Bits per kept element c (BCRS; default 64) or per dense element b (AdaTopK; default 32).
        public var bitsPerElement: Double

        init(_ r: inout ConfigReader, codecRatio: Double?) throws {
            name = try r.choice("name")
            let given = try r.optionalDouble("ratio", range: 1e-9...1)
            guard let ratio = given ?? codecRatio else {
                throw ConfigError(key: r.key("ratio"), "missing (the keep ratio the policy starts from)")
            }
            self.ratio = ratio
            minRatio = try r.double("min_ratio", default: 1e-4, range: 1e-9...1)
            maxRatio = try r.double("max_ratio", default: 1, range: 1e-9...1)
            warmupRounds = try r.int("warmup_rounds", default: 4, range: 1...1_000_000)
            targetTime = try r.optionalDouble("target_time_s", range: 1e-9...1e9)
            bitsPerElement = try r.double("bits_per_element", default: name == .adatopk ? 32 : 64, range: 1e-3...1e4)
            if name == .adatopk && targetTime == nil {
                throw ConfigError(key: r.key("target_time_s"), "adatopk needs a target upload time in seconds")
            }
            guard minRatio <= maxRatio else {
                throw ConfigError(key: r.key("min_ratio"), "min_ratio \(minRatio) is above max_ratio \(maxRatio)")
            }
            if name == .bcrs && !(minRatio...maxRatio).contains(ratio) {
                throw ConfigError(key: r.key("ratio"), "BCRS's base ratio \(ratio) is outside [min_ratio, max_ratio]")
            }
            try r.finish()
        }

        public func make() -> any RatioPolicy {
            switch name {
            case .fixed: FixedRatio(ratio)
            case .dgcWarmup: DGCWarmup(final: ratio, warmupRounds: warmupRounds)
            case .bcrs:
                BCRS(
                    baseRatio: ratio, minimumRatio: minRatio, maximumRatio: maxRatio, bitsPerKeptElement: bitsPerElement
                )
            case .adatopk:
                AdaTopK(
                    targetTime: targetTime ?? 1, minimumRatio: minRatio, maximumRatio: maxRatio,
                    bitsPerElement: bitsPerElement)
            }
        }

        var yaml: [String: Any] {
            var m: [String: Any] = [
                "name": name.rawValue, "ratio": ratio, "min_ratio": minRatio, "max_ratio": maxRatio,
                "bits_per_element": bitsPerElement,
            ]
            if name == .dgcWarmup { m["warmup_rounds"] = warmupRounds }
            if let targetTime { m["target_time_s"] = targetTime }
            return m
        }
    }

    public var uplink: Channel?
    public var downlink: Channel?
    public var ratioPolicy: Policy?
    /// How sparse updates are averaged.
    public enum Aggregation: String, CaseIterable, Sendable {
        /// The strategy's mean, missing coordinates counting as 0.
        case plain
        /// Overlap-weighted: each coordinate averaged over the clients whose payload held it.
        case opwa
    }

    public var aggregation: Aggregation

    /// No compression at all: dense float32 both ways.
    public static let none = CompressionConfig(uplink: nil, downlink: nil, ratioPolicy: nil, aggregation: .plain)

    init(uplink: Channel?, downlink: Channel?, ratioPolicy: Policy?, aggregation: Aggregation) {
        self.uplink = uplink
        self.downlink = downlink
        self.ratioPolicy = ratioPolicy
        self.aggregation = aggregation
    }

    init(_ r: inout ConfigReader) throws {
        if r.has("uplink") {
            var u = try r.section("uplink")
            uplink = try Channel(&u, feedbacks: Channel.Feedback.allCases)
        } else {
            _ = r.raw("uplink")
        }
        if r.has("downlink") {
            var d = try r.section("downlink")
            downlink = try Channel(&d, feedbacks: [.none, .residual])
        } else {
            _ = r.raw("downlink")
        }
        if r.has("ratio_policy") {
            guard let uplink, Codecs.description(of: uplink.codec)?.hasRatio == true else {
                throw ConfigError(
                    key: r.key("ratio_policy"),
                    "a ratio policy needs an uplink codec with a 'ratio' (topk, randomk, stc, composite)")
            }
            guard uplink.parameters["k"] == nil else {
                throw ConfigError(key: r.key("ratio_policy"), "a ratio policy sets the ratio; remove uplink.k")
            }
            let defaultRatio = Codecs.description(of: uplink.codec)?.parameters.first { $0.name == "ratio" }?
                .defaultValue
            var p = try r.section("ratio_policy")
            ratioPolicy = try Policy(&p, codecRatio: uplink.parameters["ratio"] ?? defaultRatio)
        } else {
            _ = r.raw("ratio_policy")
        }
        aggregation = try r.choice("aggregation", default: .plain)
    }

    var yaml: [String: Any] {
        var m: [String: Any] = ["aggregation": aggregation.rawValue]
        if let uplink { m["uplink"] = uplink.yaml }
        if let downlink { m["downlink"] = downlink.yaml }
        if let ratioPolicy { m["ratio_policy"] = ratioPolicy.yaml }
        return m
    }
}
