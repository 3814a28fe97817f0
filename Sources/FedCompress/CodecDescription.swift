/// What `Codecs.catalog` says about one codec: its registry name, what it does, and its
/// parameters.
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

    public init(name: String, summary: String, parameters: [Parameter]) {
        self.name = name
        self.summary = summary
        self.parameters = parameters
    }
}
