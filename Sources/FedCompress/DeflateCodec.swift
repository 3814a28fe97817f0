/// zlib over the payload of any other codec (lossless wrapper).
///
/// Payload: header (`.deflate`, n) · `ZlibBlock` holding the inner codec's complete payload, whose
/// inflated length must be at most `16·n + 64` bytes (the encoder refuses larger inner payloads,
/// so everything it writes decodes). Decoding inflates, hands the result to the inner codec and
/// checks that it decodes to `n` elements.
public struct DeflateCodec: Codec {
    public let inner: any Codec

    public init(inner: any Codec) {
        self.inner = inner
    }

    public var id: CodecID { .deflate }
    public var name: String { "deflate(\(inner.name))" }

    public func encode(_ values: UnsafeBufferPointer<Float>, context: CodecContext) throws -> [UInt8] {
        let bytes = try inner.encode(values, context: context)
        let limit = CompositeCodec.inflatedLimit(count: values.count)
        guard bytes.count <= limit else {
            throw CodecError(
                .invalidParameter,
                "\(inner.name) wrote \(bytes.count) bytes, more than the \(limit) a deflate payload allows")
        }
        var w = PayloadWriter(capacity: 16 + bytes.count / 2)
        CodecHeader(codec: id, count: values.count).write(to: &w)
        try ZlibBlock.write(bytes, to: &w)
        return w.bytes
    }

    public func decode(_ payload: [UInt8]) throws -> DecodedUpdate {
        var r = PayloadReader(payload)
        let header = try CodecHeader.read(from: &r, expected: id)
        let bytes = try ZlibBlock.read(from: &r, limit: CompositeCodec.inflatedLimit(count: header.count))
        try r.finish()
        let decoded = try inner.decode(bytes)
        guard decoded.count == header.count else {
            throw CodecError(
                .countMismatch, "inner payload holds \(decoded.count) elements, header says \(header.count)")
        }
        return decoded
    }
}
