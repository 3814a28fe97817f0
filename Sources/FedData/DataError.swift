/// An error thrown while reading or assembling a dataset.
///
/// Every error carries a broad ``Code`` to branch on, a ``message`` a person can act on (it names
/// the file and says what was expected and what was found) and, where one exists, the underlying
/// ``cause``.
///
/// ```swift
/// do {
///     let (train, test) = try FashionMNIST.load()
/// } catch let error as DataError where error.code == .missingFile {
///     print(error.message)   // names the path and how to install the files
/// }
/// ```
public struct DataError: Error, Sendable {
    /// Broad classification of what went wrong.
    public enum Code: String, Sendable, Hashable, CaseIterable {
        /// The file does not exist.
        case missingFile
        /// The file exists but could not be opened or read.
        case unreadableFile
        /// The file starts like gzip but its stream is damaged or ends early.
        case corruptGzip
        /// The file does not start with the IDX magic (two zero bytes).
        case badMagic
        /// The IDX element type is not unsigned byte (0x08).
        case unsupportedType
        /// The IDX header is malformed (no dimensions, or dimensions whose product overflows).
        case badHeader
        /// The file ends before the data its header announces.
        case truncated
        /// The file holds more bytes than its header announces.
        case trailingData
        /// Two files that must describe the same samples disagree on how many there are.
        case countMismatch
        /// A tensor or file has a shape other than the one required.
        case shapeMismatch
        /// A label is not below the number of classes.
        case labelOutOfRange
        /// An argument passed by the caller is not valid.
        case invalidArgument
    }

    /// Broad classification of what went wrong.
    public var code: Code

    /// What went wrong, naming the file, and what was expected versus found.
    public var message: String

    /// The file the error is about, if any.
    public var path: String?

    /// The underlying error, if this one wraps another.
    public var cause: (any Error)?

    /// An error with the given code and message about the file at `path`.
    public init(code: Code, message: String, path: String? = nil, cause: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.path = path
        self.cause = cause
    }
}

extension DataError: CustomStringConvertible {
    public var description: String {
        if let cause {
            return "\(code): \(message) (cause: \(cause))"
        }
        return "\(code): \(message)"
    }
}
