/// Uncompressed float32: the reference every other codec is measured against. Lossless.
public struct IdentityCodec: Codec {
    public init() {}
    public var id: CodecID { .identity }
    public var name: String { "identity" }

    public func encode(_ values: UnsafeBufferPointer<Float>, context: CodecContext) throws -> [UInt8] {
        var w = PayloadWriter(capacity: 16 + 4 * values.count)
        CodecHeader(codec: id, count: values.count).write(to: &w)
        w.write(floats: values)
        return w.bytes
    }

    public func decode(_ payload: [UInt8]) throws -> DecodedUpdate {
        var r = PayloadReader(payload)
        let header = try CodecHeader.read(from: &r, expected: id)
        guard header.count <= r.remaining / 4 else {
            throw CodecError(.truncated, "header announces \(header.count) values but only \(r.remaining) bytes follow")
        }
        var out = [Float](repeating: 0, count: header.count)
        try out.withUnsafeMutableBufferPointer { try r.readFloats(header.count, into: $0, "the values") }
        try r.finish()
        return .dense(out)
    }
}
