/// The quantising and low-rank codecs of this module with their parameters, for a general codec
/// registry to list and build them.
public enum QuantizerCatalog {
    /// One codec: its name and `(parameter, meaning and default)` pairs.
    public typealias Entry = (name: String, parameters: [(name: String, meaning: String)])

    public static let entries: [Entry] = [
        (
            "qsgd",
            [
                ("s", "levels, 1...2^24 (default 8)"), ("bucket", "elements per norm (default 512)"),
                ("elias", "Elias-gamma coded levels, true/false (default false)"),
            ]
        ),
        ("terngrad", [("bucket", "elements per scale; 0 = whole tensor (default 0)")]),
        ("signsgd", [("scaled", "multiply by ‖v‖₁/n, true/false (default false)")]),
        ("onebit", []),
        ("natural", []),
        ("stc", [("ratio", "fraction kept, in (0, 1] (default 0.01)")]),
        ("powersgd", [("rank", "rank of the approximation, ≥ 1 (default 4)")]),
    ]

    /// Builds the codec `name` from string parameters (missing ones take their defaults).
    /// - Throws: `CodecError.invalidParameter` for an unknown name, parameter or value.
    public static func make(_ name: String, _ parameters: [String: String] = [:]) throws -> any Codec {
        guard let entry = entries.first(where: { $0.name == name }) else {
            throw CodecError(.invalidParameter, "unknown quantiser \(name)")
        }
        for key in parameters.keys where !entry.parameters.contains(where: { $0.name == key }) {
            throw CodecError(.invalidParameter, "\(name) has no parameter \(key)")
        }
        func int(_ key: String, _ fallback: Int, _ valid: ClosedRange<Int>) throws -> Int {
            guard let text = parameters[key] else { return fallback }
            guard let v = Int(text), valid.contains(v) else {
                throw CodecError(.invalidParameter, "\(name).\(key) = \(text) is not an integer in \(valid)")
            }
            return v
        }
        func bool(_ key: String) throws -> Bool {
            guard let text = parameters[key] else { return false }
            guard let v = Bool(text) else {
                throw CodecError(.invalidParameter, "\(name).\(key) = \(text) is not true/false")
            }
            return v
        }
        switch name {
        case "qsgd":
            return QSGDCodec(
                levels: try int("s", 8, 1...QSGDCodec.maximumLevels), bucketSize: try int("bucket", 512, 1...Int.max),
                elias: try bool("elias"))
        case "terngrad":
            let bucket = try int("bucket", 0, 0...Int.max)
            return TernGradCodec(bucketSize: bucket == 0 ? nil : bucket)
        case "signsgd": return SignSGDCodec(scaled: try bool("scaled"))
        case "onebit": return OneBitCodec()
        case "natural": return NaturalCompressionCodec()
        case "stc":
            let text = parameters["ratio"] ?? "0.01"
            guard let ratio = Double(text), ratio > 0, ratio <= 1 else {
                throw CodecError(.invalidParameter, "stc.ratio = \(text) is not in (0, 1]")
            }
            return STCCodec(ratio: ratio)
        default: return PowerSGDCodec(rank: try int("rank", 4, 1...Int.max))
        }
    }
}
