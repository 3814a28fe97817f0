/// One entry of `Codecs.catalog`: the codec's registry name, what it does, its parameters, and
/// how it is built from them. The catalog is the only list of codecs.
public struct CodecDescription: Sendable, Equatable {
    /// One numeric parameter of `Codecs.make(name:parameters:)`.
    public struct Parameter: Sendable, Equatable {
        public let name: String
        public let meaning: String
        /// Value used when the parameter is omitted; `nil` when it is required or has no default.
        public let defaultValue: Double?

        public init(name: String, meaning: String, defaultValue: Double?) {
            self.name = name
            self.meaning = meaning
            self.defaultValue = defaultValue
        }
    }

    public let name: String
    public let summary: String
    public let parameters: [Parameter]
    /// Builds the codec from checked arguments (only this entry's parameters, defaults filled in).
    let build: @Sendable (CodecArguments) throws -> any Codec

    public init(
        name: String, summary: String, parameters: [Parameter],
        build: @escaping @Sendable (CodecArguments) throws -> any Codec
    ) {
        self.name = name
        self.summary = summary
        self.parameters = parameters
        self.build = build
    }

    /// Whether the codec takes a keep `ratio` (what ratio policies set).
    public var hasRatio: Bool { parameters.contains { $0.name == "ratio" } }

    public static func == (a: CodecDescription, b: CodecDescription) -> Bool {
        a.name == b.name && a.summary == b.summary && a.parameters == b.parameters
    }
}

/// The parameters given for one codec, with typed, range-checked access for its builder.
public struct CodecArguments: Sendable {
    let codec: String
    /// The values given (only parameters of the codec).
    public let given: [String: Double]
    let defaults: [String: Double]

    /// The value given for `key`, else its default.
    public func value(_ key: String) -> Double? { given[key] ?? defaults[key] }

    /// A 0/1 parameter.
    public func flag(_ key: String) throws -> Bool {
        let v = value(key) ?? 0
        guard v == 0 || v == 1 else {
            throw CodecError(.invalidParameter, "parameter '\(key)' of '\(codec)' must be 0 or 1, got \(v)")
        }
        return v == 1
    }

    /// A whole-number parameter in `valid`.
    public func integer(_ key: String, _ valid: ClosedRange<Int>) throws -> Int {
        let v = value(key) ?? 0
        guard v == v.rounded(), v >= Double(valid.lowerBound), v <= Double(valid.upperBound) else {
            throw CodecError(
                .invalidParameter, "parameter '\(key)' of '\(codec)' must be a whole number in \(valid), got \(v)")
        }
        return Int(v)
    }

    /// The `fp16values` flag as a sparse value format.
    public func valueFormat() throws -> SparseValueFormat { try flag("fp16values") ? .fp16 : .fp32 }
}
