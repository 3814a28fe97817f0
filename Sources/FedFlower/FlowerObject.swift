import Crypto

/// One content-addressed object of Flower's message store (an "inflatable object"): the bytes
/// `utf8("<type> <child>,<child>,… <body length>") + 0x00 + body`, whose id is the hex SHA-256 of
/// those bytes. A message travels as a tree of them: Message → RecordDict → ArrayRecord, ConfigRecord,
/// MetricRecord → Array → ArrayChunk.
///
/// ``parse(_:id:)`` checks everything a hostile or broken peer could get wrong: the id, the header's
/// three fields, a known type, well-formed child ids and a body of exactly the announced length.
public struct FlowerObject: Sendable, Equatable {
    /// The object types of flwr 1.41 (their Python class names).
    public enum Kind: String, Sendable, CaseIterable {
        case message = "Message"
        case recordDict = "RecordDict"
        case arrayRecord = "ArrayRecord"
        case array = "Array"
        case arrayChunk = "ArrayChunk"
        case configRecord = "ConfigRecord"
        case metricRecord = "MetricRecord"
    }

    public let kind: Kind
    /// The ids of the object's children, in the order the header lists them.
    public let children: [String]
    /// The whole object, header and body.
    public let content: [UInt8]
    /// Where the body starts in ``content``.
    public let bodyStart: Int
    /// The hex SHA-256 of ``content``.
    public let id: String

    /// The body (what follows the header's 0x00).
    public var body: ArraySlice<UInt8> { content[bodyStart...] }

    /// Flower splits an array's `.npy` bytes into chunks of at most this many (5 MiB,
    /// `FLWR_PRIVATE_MAX_ARRAY_CHUNK_SIZE`).
    public static let maximumChunkBytes = 5 * 1024 * 1024

    /// An object of `kind` with `children` and `body`.
    public init(kind: Kind, children: [String], body: some Collection<UInt8>) {
        let head = "\(kind.rawValue) \(children.joined(separator: ",")) \(body.count)"
        var content = Array(head.utf8)
        content.reserveCapacity(content.count + 1 + body.count)
        content.append(0)
        bodyStart = content.count
        content.append(contentsOf: body)
        self.kind = kind
        self.children = children
        self.content = content
        id = Self.id(of: content)
    }

    /// Parses an object's content and checks it against the id it was asked for under.
    /// - Throws: ``FlowerError`` `.idMismatch`, `.badObject` or `.unknownObjectType`.
    public static func parse(_ content: [UInt8], id expected: String) throws -> FlowerObject {
        let actual = Self.id(of: content)
        guard actual == expected else {
            throw FlowerError(.idMismatch, "object \(expected) has content that hashes to \(actual)")
        }
        guard let divider = content.firstIndex(of: 0) else {
            throw FlowerError(.badObject, "object \(expected) has no 0x00 between header and body")
        }
        guard let head = String(validating: content[..<divider], as: UTF8.self) else {
            throw FlowerError(.badObject, "object \(expected) has a header that is not UTF-8")
        }
        let fields = head.split(separator: " ", omittingEmptySubsequences: false)
        guard fields.count == 3 else {
            throw FlowerError(
                .badObject, "object \(expected) has header \(head.debugDescription), not '<type> <children> <length>'")
        }
        guard let kind = Kind(rawValue: String(fields[0])) else {
            throw FlowerError(.unknownObjectType, "object \(expected) is of unknown type '\(fields[0])'")
        }
        let children =
            fields[1].isEmpty ? [] : fields[1].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        for child in children where !isObjectID(child) {
            throw FlowerError(.badObject, "object \(expected) names child '\(child)', which is not a SHA-256 id")
        }
        let bodyLength = content.count - divider - 1
        guard fields[2].allSatisfy({ $0.isASCII && $0.isNumber }), let announced = Int(fields[2]) else {
            throw FlowerError(.badObject, "object \(expected) announces body length '\(fields[2])'")
        }
        guard announced == bodyLength else {
            throw FlowerError(
                .badObject, "object \(expected) announces a body of \(announced) bytes and carries \(bodyLength)")
        }
        return FlowerObject(kind: kind, children: children, content: content, bodyStart: divider + 1, id: actual)
    }

    private init(kind: Kind, children: [String], content: [UInt8], bodyStart: Int, id: String) {
        self.kind = kind
        self.children = children
        self.content = content
        self.bodyStart = bodyStart
        self.id = id
    }

    /// The hex SHA-256 of `content`.
    public static func id(of content: some Collection<UInt8>) -> String {
        let digest = SHA256.hash(data: Array(content))
        let hex = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(64)
        for byte in digest {
            out.append(hex[Int(byte >> 4)])
            out.append(hex[Int(byte & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Whether `text` is an object id: 64 lowercase hex digits, as SHA-256 `hexdigest()` writes.
    public static func isObjectID(_ text: some StringProtocol) -> Bool {
        text.utf8.count == 64 && text.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }
}

extension Flwr_Proto_ObjectTree {
    /// The tree of `id` whose children are `children`.
    init(id: String, children: [Flwr_Proto_ObjectTree]) {
        self.init()
        objectID = id
        self.children = children
    }

    /// Every object id in the tree, children before their parents, each once.
    var postOrderIDs: [String] {
        var seen = Set<String>()
        var out: [String] = []
        func visit(_ t: Flwr_Proto_ObjectTree) {
            for c in t.children { visit(c) }
            if seen.insert(t.objectID).inserted { out.append(t.objectID) }
        }
        visit(self)
        return out
    }

    /// The deepest path from the root, in objects.
    var depth: Int { 1 + (children.map(\.depth).max() ?? 0) }
}
