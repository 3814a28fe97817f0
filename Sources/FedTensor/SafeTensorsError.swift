/// Why bytes are not a safetensors file FedSwift can load, or why tensors cannot be written as one.
///
/// `code` is for programs that react to the kind of problem; `message` says what was expected and
/// what was found, naming the tensor when one is at fault.
public struct SafeTensorsError: Error, Sendable, CustomStringConvertible {
    /// The kind of problem.
    public enum Code: Sendable, Hashable {
        /// Shorter than the 8-byte length prefix, or the header length runs past the end of the bytes.
        case invalidHeaderLength
        /// The header length exceeds the 100 MB limit.
        case headerTooLarge
        /// The header is not valid UTF-8.
        case invalidUTF8
        /// The header is not JSON of the subset safetensors uses.
        case invalidJSON
        /// The JSON is well formed but not a safetensors header: a key is missing or has the wrong type.
        case invalidHeader
        /// A tensor name is empty or the reserved `__metadata__`.
        case invalidName
        /// Two tensors share a name.
        case duplicateName
        /// A tensor's dtype is not F32, the only one FedSwift stores.
        case unsupportedDType
        /// The product of a tensor's dimensions does not fit in `Int`.
        case shapeOverflow
        /// A tensor's `data_offsets` run past the data region.
        case offsetsOutOfRange
        /// A tensor's `data_offsets` end before they begin.
        case reversedOffsets
        /// A tensor's byte range does not hold exactly 4 × (number of elements) bytes.
        case sizeMismatch
        /// Two tensors' byte ranges overlap.
        case overlappingTensors
        /// Bytes of the data region belong to no tensor (a hole, or trailing bytes).
        case uncoveredBytes
    }

    /// The kind of problem.
    public var code: Code
    /// What was wrong: expected against found.
    public var message: String
    /// The file the bytes came from, when read from one.
    public var path: String?

    /// An error of kind `code` described by `message`.
    public init(_ code: Code, _ message: String, path: String? = nil) {
        self.code = code
        self.message = message
        self.path = path
    }

    public var description: String {
        path.map { "\($0): \(message)" } ?? message
    }
}
