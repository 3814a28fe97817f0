/// A payload a decoder refused, or parameters an encoder cannot use: what was wrong, where.
public struct CodecError: Error, CustomStringConvertible, Sendable {
    public enum Code: String, Sendable {
        case truncated, badMagic, unsupportedVersion, wrongCodec, invalidHeader, invalidParameter, indexOutOfRange,
            nonFinite, lengthOverflow, trailingBytes, countMismatch
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.rawValue): \(message)" }
}
