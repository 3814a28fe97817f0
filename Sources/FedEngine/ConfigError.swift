/// A problem with an experiment file or an override: which key, what was wrong, what is allowed.
public struct ConfigError: Error, CustomStringConvertible, Sendable {
    public let key: String
    public let message: String

    public init(key: String, _ message: String) {
        self.key = key
        self.message = message
    }

    public var description: String { key.isEmpty ? message : "\(key): \(message)" }
}
