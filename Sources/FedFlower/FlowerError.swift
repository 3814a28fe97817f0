/// Why a node refused something it received from the SuperLink or could not talk to it: a code a
/// program can act on, a message a person can, and the underlying error when there is one.
public struct FlowerError: Error, CustomStringConvertible, Sendable {
    public enum Code: String, Sendable {
        /// An object whose content is not `<type> <children> <length>\0<body>` as announced.
        case badObject
        /// An object whose content does not hash to its id.
        case idMismatch
        /// An object of a type a node does not know.
        case unknownObjectType
        /// Objects that do not form the tree of one message (a missing, extra or unrelated child).
        case badTree
        /// A record whose body does not decode.
        case badRecord
        /// A `.npy` payload or an `Array` that does not describe its bytes.
        case badArray
        /// An element type the node does not compute with.
        case unsupportedDType
        /// An instruction the node cannot carry out (unknown message type, model keys, shapes).
        case badInstruction
        /// The SuperLink answered with an HTTP error.
        case http
        /// The SuperLink could not be reached or the connection broke.
        case transport
        /// The SuperLink answered with a body that is not the expected protobuf.
        case badResponse
        /// The SuperLink refused or lost this node (unknown node, failed activation).
        case rejected
        /// A key file that cannot be read or is not a P-384 key.
        case badKey
    }

    public let code: Code
    public let message: String
    public let cause: (any Error)?
    /// The HTTP status of an `.http` error.
    public let status: Int?

    public init(_ code: Code, _ message: String, cause: (any Error)? = nil, status: Int? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
        self.status = status
    }

    public var description: String { cause.map { "\(message): \($0)" } ?? message }
}
