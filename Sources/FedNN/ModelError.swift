/// An error raised while building, loading or running a model: what was wrong, and where.
public struct ModelError: Error, CustomStringConvertible, Sendable {
    public enum Code: String, Sendable {
        case unknownModel, unknownParameter, missingParameter, shapeMismatch, invalidConfiguration, invalidInput
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
