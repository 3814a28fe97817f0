/// The self-describing start of every payload: magic `FSC`, format version, codec id, element
/// count (varint). Codec parameters follow, written and read by the codec itself.
public struct CodecHeader: Sendable, Equatable {
    public static let magic: [UInt8] = Array("FSC".utf8)
    public static let version: UInt8 = 1
    /// Largest element count a payload may announce (2³¹ − 1), so hostile counts cannot make a
    /// decoder allocate without bound.
    public static let maximumCount = Int(Int32.max)

    public var codec: CodecID
    public var count: Int

    public init(codec: CodecID, count: Int) {
        self.codec = codec
        self.count = count
    }

    public func write(to w: inout PayloadWriter) {
        w.write(bytes: Self.magic)
        w.write(Self.version)
        w.write(codec.rawValue)
        w.writeVarint(UInt64(count))
    }

    /// Reads and checks a header; `expected` rejects payloads of another codec.
    public static func read(from r: inout PayloadReader, expected: CodecID? = nil) throws -> CodecHeader {
        let magic = try r.readBytes(3, "the magic number")
        guard Array(magic) == Self.magic else {
            throw CodecError(.badMagic, "not a FedSwift codec payload (bad magic)")
        }
        let version = try r.readUInt8("the format version")
        guard version == Self.version else {
            throw CodecError(
                .unsupportedVersion, "format version \(version) is not supported (this build reads \(Self.version))")
        }
        let raw = try r.readUInt8("the codec id")
        guard let codec = CodecID(rawValue: raw) else { throw CodecError(.invalidHeader, "unknown codec id \(raw)") }
        if let expected, codec != expected {
            throw CodecError(.wrongCodec, "payload was made by \(codec), expected \(expected)")
        }
        let count = try r.readCount("the element count", limit: maximumCount)
        return CodecHeader(codec: codec, count: count)
    }
}

/// Wire identifiers of the codecs; never renumber (payloads outlive builds).
public enum CodecID: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    case identity = 1
    case fp16 = 2
    case bf16 = 3
    case topK = 10
    case randomK = 11
    case threshold = 12
    case dgc = 13
    case qsgd = 20
    case ternGrad = 21
    case signSGD = 22
    case oneBit = 23
    case natural = 24
    case stc = 25
    case powerSGD = 30
    case composite = 40
    case deflate = 41
    case tensorwise = 50

    public var description: String {
        switch self {
        case .identity: "identity"
        case .fp16: "fp16"
        case .bf16: "bf16"
        case .topK: "topk"
        case .randomK: "randomk"
        case .threshold: "threshold"
        case .dgc: "dgc"
        case .qsgd: "qsgd"
        case .ternGrad: "terngrad"
        case .signSGD: "signsgd"
        case .oneBit: "onebit"
        case .natural: "natural"
        case .stc: "stc"
        case .powerSGD: "powersgd"
        case .composite: "composite"
        case .deflate: "deflate"
        case .tensorwise: "tensorwise"
        }
    }
}
